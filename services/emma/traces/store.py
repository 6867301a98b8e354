"""Recent traces in memory: the spans of the last N trace ids, oldest evicted first."""

from __future__ import annotations

import collections
import dataclasses
import threading

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

DEFAULT_MAX_TRACES = 1000
# A runaway trace (a loop of calls) must not take the memory of the others.
MAX_SPANS_PER_TRACE = 2000


def text(value: common_pb2.AnyValue) -> str:
    """An attribute value as text: arrays joined by commas, maps as key=value."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return ",".join(text(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return ",".join(f"{kv.key}={text(kv.value)}" for kv in value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    return "" if kind is None else str(getattr(value, kind))


@dataclasses.dataclass(frozen=True)
class SpanRecord:
    """One span as the waterfall needs it; times in nanoseconds since the epoch."""

    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, str]

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


def records(
    data: trace_pb2.TracesData | trace_service_pb2.ExportTraceServiceRequest,
) -> list[SpanRecord]:
    """Every span of an OTLP message, with the service.name of its resource."""
    out = []
    for resource_spans in data.resource_spans:
        service = ""
        for pair in resource_spans.resource.attributes:
            if pair.key == "service.name":
                service = text(pair.value)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    SpanRecord(
                        service=service,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=span.kind,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        error=span.status.code == trace_pb2.Status.STATUS_CODE_ERROR,
                        attributes={pair.key: text(pair.value) for pair in span.attributes},
                    )
                )
    return out


@dataclasses.dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    root: str
    start_ns: int
    duration_ns: int
    spans: int
    services: tuple[str, ...]
    error: bool


def summarise(trace_id: str, spans: list[SpanRecord]) -> TraceSummary:
    start = min(span.start_ns for span in spans)
    end = max(span.end_ns for span in spans)
    ids = {span.span_id for span in spans}
    roots = [span for span in spans if span.parent_span_id not in ids]
    root = min(roots or spans, key=lambda span: span.start_ns)
    return TraceSummary(
        trace_id=trace_id,
        root=f"{root.service} {root.name}",
        start_ns=start,
        duration_ns=end - start,
        spans=len(spans),
        services=tuple(sorted({span.service for span in spans})),
        error=any(span.error for span in spans),
    )


class TraceStore:
    """Thread-safe: the receiver adds from gRPC threads while queries read."""

    def __init__(self, max_traces: int = DEFAULT_MAX_TRACES) -> None:
        if max_traces < 1:
            raise ValueError("max_traces must be >= 1")
        self.max_traces = max_traces
        self._traces: collections.OrderedDict[str, list[SpanRecord]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, spans: list[SpanRecord]) -> None:
        with self._lock:
            for span in spans:
                kept = self._traces.get(span.trace_id)
                if kept is None:
                    kept = self._traces[span.trace_id] = []
                    while len(self._traces) > self.max_traces:
                        self._traces.popitem(last=False)
                if len(kept) < MAX_SPANS_PER_TRACE:
                    kept.append(span)

    def trace(self, trace_id: str) -> list[SpanRecord]:
        with self._lock:
            return list(self._traces.get(trace_id.lower(), ()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._traces)

    def summaries(self) -> list[TraceSummary]:
        """Every kept trace, the most recently started first."""
        with self._lock:
            kept = [(trace_id, list(spans)) for trace_id, spans in self._traces.items()]
        found = [summarise(trace_id, spans) for trace_id, spans in kept if spans]
        return sorted(found, key=lambda summary: summary.start_ns, reverse=True)
