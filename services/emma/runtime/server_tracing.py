"""One SERVER span per traced RPC, continuing the caller's W3C trace context."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeAlias, cast
from urllib.parse import unquote

import grpc
from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from emma.runtime.method_handlers import Handler, WrappingInterceptor, rewrapped

Context = grpc.aio.ServicerContext[Any, Any]
# Health probes and reflection would drown the traces that matter.
UNTRACED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
STATUS_CODE_ATTRIBUTE = "rpc.grpc.status_code"
# The codes that mean the server failed (OpenTelemetry's RPC conventions): a server span
# ends in error only for these; a caller's mistake (INVALID_ARGUMENT, NOT_FOUND) is not
# the server's error.
SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


_Carrier: TypeAlias = Sequence[tuple[str, Any]]


class _MetadataGetter(Getter[_Carrier]):
    """Reads the W3C headers straight from gRPC's metadata tuples, without a dict per call."""

    def get(self, carrier: _Carrier, key: str) -> list[str] | None:
        values = [value for name, value in carrier if name == key]
        return values or None

    def keys(self, carrier: _Carrier) -> list[str]:
        return [name for name, _ in carrier]


_GETTER = _MetadataGetter()


def traced_method(method: str) -> bool:
    """Whether calls of `method` get a span: all but health and reflection."""
    return not method.startswith(UNTRACED_PREFIXES)


def _peer_attributes(context: Context) -> dict[str, str]:
    """net.peer.ip and net.peer.port from gRPC's peer ("ipv4:10.0.0.1:5000", "ipv6:[::1]:5000")."""
    peer = context.peer() or ""
    kind, _, address = peer.split(",")[0].partition(":")
    ip, _, port = address.rpartition(":")
    if kind not in ("ipv4", "ipv6") or not ip:
        return {}
    ip = unquote(ip)
    attributes = {"net.peer.ip": ip, "net.peer.port": port}
    if ip in ("127.0.0.1", "[::1]"):
        attributes["net.peer.name"] = "localhost"
    return attributes


def _ended(span: Span, context: Context, error: BaseException | None) -> None:
    """Puts the call's status code on `span` (and the error, if the server failed)."""
    code = context.code()
    if not isinstance(code, grpc.StatusCode):
        # No abort set it: gRPC answers UNKNOWN for an escaped exception, CANCELLED when
        # the caller went away (the task was cancelled), and OK otherwise.
        code = grpc.StatusCode.OK
        if error is not None:
            code = grpc.StatusCode.UNKNOWN
            if not isinstance(error, Exception):
                code = grpc.StatusCode.CANCELLED
    span.set_attribute(STATUS_CODE_ATTRIBUTE, code.value[0])
    if code not in SERVER_ERRORS:
        return
    if error is not None and not isinstance(error, grpc.aio.AbortError):
        span.record_exception(error)
        description = type(error).__name__
    else:
        description = context.details() or code.name
    span.set_status(Status(StatusCode.ERROR, description))


class ServerTracingInterceptor(WrappingInterceptor):
    """A SERVER span named after the method for every call but health and reflection.

    The span continues the caller's W3C trace context (traceparent, tracestate and baggage
    from the call's metadata) and carries OpenTelemetry's RPC attributes: rpc.system,
    rpc.service, rpc.method and rpc.grpc.status_code, and the peer's address when the span
    is recorded. It replaces opentelemetry-instrumentation-grpc's server interceptor, which
    wraps every call's handler and context anew and reads the peer and metadata for spans
    that are not recorded: with it the server's interceptors cost 300 thousand instructions
    per call, with this one 200 thousand (`bench.interceptors`, docs/performance.md).
    Outgoing calls keep that package's client interceptors.
    """

    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self._tracer = tracer or trace.get_tracer("emma.runtime.server")
        super().__init__()

    def passes(self, method: str) -> bool:
        return not traced_method(method)

    def wrap(self, handler: Handler, method: str) -> Handler:
        service, _, name = method.lstrip("/").partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        unary = self._unary(method, attributes)
        streaming = self._streaming(method, attributes)
        return rewrapped(
            handler,
            unary_unary=unary,
            stream_unary=unary,
            unary_stream=streaming,
            stream_stream=streaming,
        )

    def _span(self, method: str, attributes: dict[str, str], context: Context) -> _CallSpan:
        """The call's span, current (under the caller's context) while the call runs."""
        metadata = context.invocation_metadata()
        parent = propagate.extract(cast(_Carrier, metadata), getter=_GETTER) if metadata else None
        span = self._tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        if span.is_recording():
            span.set_attributes(_peer_attributes(context))
        return _CallSpan(span, trace.set_span_in_context(span, parent), context)

    def _unary(
        self, method: str, attributes: dict[str, str]
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        def wrap(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def traced(request: Any, context: Context) -> Any:
                with self._span(method, attributes, context):
                    return await behaviour(request, context)

            return traced

        return wrap

    def _streaming(
        self, method: str, attributes: dict[str, str]
    ) -> Callable[[Callable[..., AsyncIterator[Any]]], Callable[..., AsyncIterator[Any]]]:
        def wrap(behaviour: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
            async def traced(request: Any, context: Context) -> AsyncIterator[Any]:
                with self._span(method, attributes, context):
                    async for response in behaviour(request, context):
                        yield response

            return traced

        return wrap


class _CallSpan:
    """A call's span, made current on entry and ended on exit with the call's status."""

    __slots__ = ("_context", "_current", "_span", "_token")
    _token: contextvars.Token[context_api.Context]

    def __init__(self, span: Span, current: context_api.Context, context: Context) -> None:
        self._span = span
        self._current = current
        self._context = context

    def __enter__(self) -> None:
        self._token = context_api.attach(self._current)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        context_api.detach(self._token)
        _ended(self._span, self._context, error)
        self._span.end()
