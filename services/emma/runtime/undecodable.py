"""Requests whose bytes are no valid message get INVALID_ARGUMENT, not UNKNOWN.

gRPC parses a request before any servicer code runs; a parse error (corrupt wire format,
a string field that is not UTF-8) would end the call as UNKNOWN, a server fault. This
interceptor lets the parse error through as a value and answers it as the caller's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from emma.runtime.method_handlers import Handler, WrappingInterceptor, rewrapped


class Undecodable:
    """Stands in for a request that could not be parsed."""

    def __init__(self, error: DecodeError) -> None:
        self.error = error

    def message(self) -> str:
        # DecodeError names the message type and what was wrong, never the bytes.
        return f"request: not a valid message: {self.error}"


def _lenient(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return Undecodable(error)

    return parse


def _checked_unary(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message())
        return await behaviour(request, context)

    return call


def _checked_stream(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def call(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        async def parsed() -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, Undecodable):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message())
                yield request

        return await behaviour(parsed(), context)

    return call


class UndecodableRequestInterceptor(WrappingInterceptor):
    """Answers unparseable requests of unary and client-streaming RPCs with INVALID_ARGUMENT."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        deserializer = handler.request_deserializer
        if deserializer is None or (handler.unary_unary is None and handler.stream_unary is None):
            return handler
        return rewrapped(
            handler,
            unary_unary=_checked_unary,
            stream_unary=_checked_stream,
            request_deserializer=_lenient(deserializer),
        )
