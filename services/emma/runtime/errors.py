"""Domain errors and their gRPC status codes, so servicers stay thin."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from redis import exceptions as redis_errors


class DomainError(Exception):
    """An error a caller can act on; subclasses choose the gRPC status code."""

    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(DomainError):
    """A request field is malformed; the message starts with the field's path."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(DomainError):
    """A concurrent change got in the way; the caller may retry the whole request."""

    code = grpc.StatusCode.ABORTED


class Unavailable(DomainError):
    """A backing store is unreachable; the caller may retry with backoff."""

    code = grpc.StatusCode.UNAVAILABLE


# Longest status message sent. Messages may quote the request (an unknown store id); the
# message travels percent-encoded in a header, and one beyond gRPC's 8 KiB metadata limit
# would reach the caller as RESOURCE_EXHAUSTED instead of the error (4-byte characters
# encode to 12 bytes each).
MAX_MESSAGE_CHARS = 512
_CUT = "... (truncated)"


def status_message(error: DomainError) -> str:
    """The error's message, cut to MAX_MESSAGE_CHARS; it still starts with the field."""
    message = str(error)
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - len(_CUT)] + _CUT


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: DomainError) -> NoReturn:
    """Ends the call with the error's status code and message."""
    await context.abort(error.code, status_message(error))
    raise AssertionError("unreachable: context.abort raises")


R = TypeVar("R")
Handler = Callable[[Any, Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[R]]


def maps_domain_errors(handler: Handler[R]) -> Handler[R]:
    """Decorates a servicer method so a DomainError becomes its gRPC status, not INTERNAL."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> R:
        try:
            return await handler(self, request, context)
        except DomainError as error:
            await abort_with(context, error)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as error:
            # A Redis outage is transient for the caller, not a server bug (UNKNOWN).
            await abort_with(context, Unavailable(f"storage unavailable: {type(error).__name__}"))

    return wrapper
