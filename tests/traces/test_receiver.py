"""The trace receiver keeps what services export over OTLP/gRPC and answers trace queries."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from emma.cli.main import main as emma
from emma.traces.query import get_trace, list_traces
from emma.traces.receiver import TraceServer


@pytest.fixture
def server() -> Iterator[TraceServer]:
    with TraceServer(port=0, max_traces=3) as server:
        yield server


def exporter_to(server: TraceServer, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=server.endpoint, insecure=True)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def one_trace(provider: TracerProvider, pause_s: float = 0.0, fail: bool = False) -> str:
    """A Decide-like trace: a server span with two children, one of them a Redis call."""
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("Decide", attributes={"emma.offer_id": "coffee"}) as root:
        with tracer.start_as_current_span("emma.decision.predict") as predict:
            predict.set_attribute("emma.model_version", "v7")
            time.sleep(pause_s)
        with tracer.start_as_current_span("EVALSHA") as redis:
            redis.set_attribute("db.system", "redis")
            if fail:
                redis.set_status(Status(StatusCode.ERROR))
    return format(root.get_span_context().trace_id, "032x")


def test_exported_spans_come_back_by_trace_id(server: TraceServer) -> None:
    provider = exporter_to(server, "emma-decision")
    trace_id = one_trace(provider)
    provider.shutdown()

    spans = get_trace(server.address, trace_id)
    assert {span.name for span in spans} == {"Decide", "emma.decision.predict", "EVALSHA"}
    assert {span.service for span in spans} == {"emma-decision"}
    by_name = {span.name: span for span in spans}
    assert by_name["emma.decision.predict"].parent_span_id == by_name["Decide"].span_id
    assert by_name["Decide"].attributes["emma.offer_id"] == "coffee"
    assert by_name["Decide"].duration_ns >= by_name["emma.decision.predict"].duration_ns


def test_only_the_last_traces_are_kept(server: TraceServer) -> None:
    provider = exporter_to(server, "emma-decision")
    ids = [one_trace(provider) for _ in range(4)]
    provider.shutdown()
    assert len(server.store) == 3
    with pytest.raises(grpc.RpcError) as error:
        get_trace(server.address, ids[0])
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert [summary.trace_id for summary, _ in list_traces(server.address)] == ids[:0:-1]


def test_slowest_traces_come_first(server: TraceServer) -> None:
    provider = exporter_to(server, "emma-decision")
    fast = one_trace(provider)
    # Far longer than the fast trace can take on a loaded machine (its first spans once
    # took more than 50 ms in a full test run).
    slow = one_trace(provider, pause_s=0.3)
    provider.shutdown()
    found = list_traces(server.address, "slowest", limit=1)
    assert [summary.trace_id for summary, _ in found] == [slow]
    assert found[0][0].duration_ns >= 300_000_000
    assert fast in {summary.trace_id for summary, _ in list_traces(server.address)}


def test_bad_queries_name_the_field(server: TraceServer) -> None:
    with pytest.raises(grpc.RpcError) as error:
        get_trace(server.address, "not-a-trace-id")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "trace_id" in str(error.value.details())
    with pytest.raises(grpc.RpcError) as error:
        list_traces(server.address, "fastest")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "order" in str(error.value.details())
    with pytest.raises(grpc.RpcError) as error:
        list_traces(server.address, "recent", limit=0)
    assert "limit" in str(error.value.details())


def test_emma_trace_prints_a_waterfall(
    server: TraceServer, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = exporter_to(server, "emma-decision")
    trace_id = one_trace(provider, fail=True)
    provider.shutdown()

    assert emma(["trace", trace_id, "--address", server.address]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"trace {trace_id}  3 spans  1 services")
    assert lines[0].endswith("ERROR")
    body = lines[2:]
    # Parent first, children indented below it in start order.
    assert [line.split()[1] for line in body] == ["Decide", "emma.decision.predict", "EVALSHA"]
    assert "emma-decision    Decide " in body[0]
    assert "emma-decision      emma.decision.predict" in body[1]
    assert "offer_id=coffee" in body[0]
    assert "model_version=v7" in body[1]
    # The failed Redis call's bar is drawn with "!".
    assert "!" in body[2] and "█" in body[0]


def test_emma_traces_lists_the_slowest(
    server: TraceServer, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = exporter_to(server, "emma-decision")
    one_trace(provider)
    slow = one_trace(provider, pause_s=0.03)
    provider.shutdown()
    assert emma(["traces", "--slow", "--limit", "1", "--address", server.address]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[1].startswith(slow)
    assert "emma-decision Decide" in out[1]


def test_emma_trace_without_a_receiver_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from emma.runtime.redis_server import free_port

    address = f"127.0.0.1:{free_port()}"
    assert emma(["trace", "0" * 32, "--address", address]) == 1
    assert "no trace receiver at" in capsys.readouterr().err
