"""Server interceptors' wrapped method handlers, built once per method instead of per call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

# grpc's classes are generic only in its type stubs, not at run time.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


class PerMethod:
    """Keeps what `wrap(handler, method)` built for each method and gives it out again.

    gRPC asks every interceptor for a call's handler on every call. Wrapping it anew each
    time (closures and a new RpcMethodHandler per interceptor) was measurable work on the
    decision service's hot path. A method's handler only changes if the servicer's does,
    so the wrapped one is kept with the handler it wraps, and rebuilt when that differs.
    """

    def __init__(self, wrap: Callable[[Handler, str], Handler]) -> None:
        self._wrap = wrap
        # Bounded by the server's methods: unknown methods have no handler to wrap.
        self._built: dict[str, tuple[Handler, Handler]] = {}

    def __call__(self, handler: Handler, method: str) -> Handler:
        built = self._built.get(method)
        if built is not None and built[0] is handler:
            return built[1]
        wrapped = self._wrap(handler, method)
        self._built[method] = (handler, wrapped)
        return wrapped


class WrappingInterceptor(_ServerInterceptor):
    """A server interceptor that wraps each method's handler once (`wrap`), not per call,
    and lets the calls of the methods `passes` names through as they are."""

    def __init__(self) -> None:
        self._handlers = PerMethod(self.wrap)

    def passes(self, method: str) -> bool:
        """Whether calls of `method` go through unwrapped."""
        return False

    def wrap(self, handler: Handler, method: str) -> Handler:
        """`handler` with this interceptor's behaviour around it."""
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or self.passes(method):
            return handler
        return self._handlers(handler, method)


Wrapper: TypeAlias = Callable[[Callable[..., Any]], Callable[..., Any]]


def rewrapped(
    handler: Handler,
    *,
    unary_unary: Wrapper | None = None,
    stream_unary: Wrapper | None = None,
    unary_stream: Wrapper | None = None,
    stream_stream: Wrapper | None = None,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> Handler:
    """`handler` with its behaviour wrapped by the wrapper given for its kind of call, its
    serializer kept and `request_deserializer` in place of its own if given; `handler`
    itself when neither applies."""
    kinds = (
        (handler.unary_unary, unary_unary, grpc.unary_unary_rpc_method_handler),
        (handler.stream_unary, stream_unary, grpc.stream_unary_rpc_method_handler),
        (handler.unary_stream, unary_stream, grpc.unary_stream_rpc_method_handler),
        (handler.stream_stream, stream_stream, grpc.stream_stream_rpc_method_handler),
    )
    for behaviour, wrap, build in kinds:
        if behaviour is None:
            continue
        if wrap is None and request_deserializer is None:
            return handler
        return build(
            wrap(behaviour) if wrap is not None else behaviour,
            request_deserializer=request_deserializer or handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler
