"""An in-test OTLP/gRPC trace receiver: the services export to it exactly as to a collector."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT


def text(value: common_pb2.AnyValue) -> str:
    """Any attribute value as text, arrays and maps included, for searching."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return " ".join(text(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return " ".join(f"{kv.key}={text(kv.value)}" for kv in value.kvlist_value.values)
    return "" if kind is None else str(getattr(value, kind))


def attributes(pairs: list[common_pb2.KeyValue]) -> dict[str, str]:
    return {pair.key: text(pair.value) for pair in pairs}


@dataclasses.dataclass(frozen=True)
class ExportedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, str]
    # Attributes of the span's events and of its resource, for the personal-data check.
    other_text: tuple[str, ...]


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Collects every exported span; `start()` serves OTLP/gRPC on a free loopback port."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port = 0

    def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        for resource_spans in request.resource_spans:
            resource = attributes(list(resource_spans.resource.attributes))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    events = [
                        f"{event.name} {attributes(list(event.attributes))}"
                        for event in span.events
                    ]
                    received.append(
                        ExportedSpan(
                            service=resource.get("service.name", ""),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            attributes=attributes(list(span.attributes)),
                            other_text=(*events, str(resource)),
                        )
                    )
        with self._lock:
            self.spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TraceReceiver:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)  # type: ignore[no-untyped-call]
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(None)

    def snapshot(self) -> list[ExportedSpan]:
        with self._lock:
            return list(self.spans)

    def trace(self, trace_id: str) -> list[ExportedSpan]:
        return [span for span in self.snapshot() if span.trace_id == trace_id]

    def wait_for(
        self, trace_id: str, done: Callable[[list[ExportedSpan]], bool], timeout: float = 15.0
    ) -> list[ExportedSpan]:
        """The spans of `trace_id` once `done(spans)` holds; whatever arrived after `timeout`."""
        deadline = time.monotonic() + timeout
        spans = self.trace(trace_id)
        while not done(spans) and time.monotonic() < deadline:
            time.sleep(0.05)
            spans = self.trace(trace_id)
        return spans
