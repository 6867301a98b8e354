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


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: DomainError) -> NoReturn:
    """Ends the call with the error's status code and message."""
    await context.abort(error.code, str(error))
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
