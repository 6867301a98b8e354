"""Server spans over real gRPC: the caller's trace continued, RPC attributes, status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from emma.runtime.method_handlers import PerMethod
from emma.runtime.server_tracing import ServerTracingInterceptor

SERVICE = "emma.test.v1.Echo"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
Context = grpc.aio.ServicerContext[Any, Any]


class Recorder:
    """The methods under test; each notes the span context and baggage it ran under."""

    def __init__(self) -> None:
        self.seen: list[tuple[trace.SpanContext, object]] = []

    def _note(self) -> None:
        self.seen.append((trace.get_current_span().get_span_context(), baggage.get_baggage("k")))

    async def echo(self, request: bytes, context: Context) -> bytes:
        self._note()
        if request.startswith(b"abort:"):
            code = grpc.StatusCode[request.removeprefix(b"abort:").decode()]
            await context.abort(code, "refused for a reason")
        if request == b"raise":
            raise ValueError("broken")
        return request

    async def count(self, requests: AsyncIterator[bytes], context: Context) -> bytes:
        self._note()
        return str(len([r async for r in requests])).encode()

    async def repeat(self, request: bytes, context: Context) -> AsyncIterator[bytes]:
        self._note()
        for _ in range(3):
            yield request


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


async def _serve(
    recorder: Recorder, exporter: InMemorySpanExporter
) -> tuple[grpc.aio.Server, grpc.aio.Channel]:
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = grpc.aio.server(interceptors=[ServerTracingInterceptor(provider.get_tracer("t"))])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(recorder.echo),
                    "Count": grpc.stream_unary_rpc_method_handler(recorder.count),
                    "Repeat": grpc.unary_stream_rpc_method_handler(recorder.repeat),
                },
            ),
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health",
                {"Check": grpc.unary_unary_rpc_method_handler(recorder.echo)},
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


def _traceparent(sampled: bool) -> tuple[tuple[str, str], ...]:
    flags = "01" if sampled else "00"
    return (("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN_ID}-{flags}"), ("baggage", "k=v"))


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


async def test_a_call_continues_the_callers_trace_with_the_rpc_attributes(
    exporter: InMemorySpanExporter,
) -> None:
    recorder = Recorder()
    server, channel = await _serve(recorder, exporter)
    async with channel:
        answer = await channel.unary_unary(f"/{SERVICE}/Echo")(b"hi", metadata=_traceparent(True))
    await server.stop(0)
    assert answer == b"hi"
    span = _only(exporter)
    assert span.name == f"/{SERVICE}/Echo"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN_ID
    assert dict(span.attributes or {}) | {"net.peer.port": "any"} == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Echo",
        "rpc.grpc.status_code": 0,
        "net.peer.ip": "127.0.0.1",
        "net.peer.port": "any",
        "net.peer.name": "localhost",
    }
    assert span.status.status_code is StatusCode.UNSET
    # The method ran inside the span, with the caller's baggage.
    (seen_context, seen_baggage) = recorder.seen[0]
    assert seen_context.span_id == span.context.span_id
    assert seen_baggage == "v"


@pytest.mark.parametrize(
    ("request_bytes", "code", "status", "description"),
    [
        (b"abort:INVALID_ARGUMENT", 3, StatusCode.UNSET, None),
        (b"abort:NOT_FOUND", 5, StatusCode.UNSET, None),
        (b"abort:UNAVAILABLE", 14, StatusCode.ERROR, "refused for a reason"),
        (b"raise", 2, StatusCode.ERROR, "ValueError"),
    ],
)
async def test_the_status_code_is_recorded_and_only_server_faults_are_errors(
    exporter: InMemorySpanExporter,
    request_bytes: bytes,
    code: int,
    status: StatusCode,
    description: str | None,
) -> None:
    server, channel = await _serve(Recorder(), exporter)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await channel.unary_unary(f"/{SERVICE}/Echo")(request_bytes)
    await server.stop(0)
    assert failed.value.code().value[0] == code
    span = _only(exporter)
    assert (span.attributes or {})["rpc.grpc.status_code"] == code
    assert span.status.status_code is status
    assert span.status.description == description
    recorded = [event.name for event in span.events]
    assert recorded == (["exception"] if request_bytes == b"raise" else [])


async def test_an_unsampled_caller_gets_no_span_but_its_trace_id_inside(
    exporter: InMemorySpanExporter,
) -> None:
    recorder = Recorder()
    server, channel = await _serve(recorder, exporter)
    async with channel:
        await channel.unary_unary(f"/{SERVICE}/Echo")(b"hi", metadata=_traceparent(False))
    await server.stop(0)
    assert exporter.get_finished_spans() == ()
    (seen_context, _) = recorder.seen[0]
    assert format(seen_context.trace_id, "032x") == TRACE_ID
    assert not seen_context.trace_flags.sampled


async def test_streaming_calls_are_traced_until_their_last_message(
    exporter: InMemorySpanExporter,
) -> None:
    server, channel = await _serve(Recorder(), exporter)
    async with channel:
        counted = await channel.stream_unary(f"/{SERVICE}/Count")(iter([b"a", b"b"]))
        repeated = [r async for r in channel.unary_stream(f"/{SERVICE}/Repeat")(b"x")]
    await server.stop(0)
    assert counted == b"2" and repeated == [b"x"] * 3
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {f"/{SERVICE}/Count", f"/{SERVICE}/Repeat"}
    assert all((s.attributes or {})["rpc.grpc.status_code"] == 0 for s in spans.values())


async def test_health_checks_are_not_traced(exporter: InMemorySpanExporter) -> None:
    server, channel = await _serve(Recorder(), exporter)
    async with channel:
        assert await channel.unary_unary("/grpc.health.v1.Health/Check")(b"ok") == b"ok"
    await server.stop(0)
    assert exporter.get_finished_spans() == ()


def test_a_methods_handler_is_wrapped_once_and_again_when_it_changes() -> None:
    built: list[str] = []

    def wrap(handler: Any, method: str) -> Any:
        built.append(method)
        return ("wrapped", handler)

    per_method = PerMethod(wrap)
    first, second = (
        grpc.unary_unary_rpc_method_handler(len),
        grpc.unary_unary_rpc_method_handler(len),
    )
    assert per_method(first, "/s/A") == ("wrapped", first)
    assert per_method(first, "/s/A") is per_method(first, "/s/A")
    assert per_method(first, "/s/B") == ("wrapped", first)
    assert per_method(second, "/s/A") == ("wrapped", second)
    assert built == ["/s/A", "/s/B", "/s/A"]
