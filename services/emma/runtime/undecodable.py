"""Requests whose bytes are no valid message get INVALID_ARGUMENT, not UNKNOWN.

gRPC parses a request before any servicer code runs; a parse error (corrupt wire format,
a string field that is not UTF-8) would end the call as UNKNOWN, a server fault. This
interceptor lets the parse error through as a value and answers it as the caller's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError

# grpc's classes are generic only in its type stubs, not at run time.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


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


class UndecodableRequestInterceptor(_ServerInterceptor):
    """Answers unparseable requests of unary and client-streaming RPCs with INVALID_ARGUMENT."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        parse = _lenient(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _checked_unary(handler.unary_unary),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _checked_stream(handler.stream_unary),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        return handler
