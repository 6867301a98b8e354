"""The trace receiver: OTLP/gRPC TraceService in, a small query service out, on one port.

Services export to it as to any OpenTelemetry Collector (OTEL_EXPORTER_OTLP_ENDPOINT);
`emma trace` and `emma traces` ask it over gRPC:

    /emma.traces.v1.TraceQuery/GetTrace    google.protobuf.StringValue (trace id) -> TracesData
    /emma.traces.v1.TraceQuery/ListTraces  google.protobuf.Struct {order, limit}  -> TracesData

The query messages are stock protobuf types, so the query needs no generated code.
"""

from __future__ import annotations

import re
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import struct_pb2, wrappers_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from emma.traces.store import DEFAULT_MAX_TRACES, SpanRecord, TraceStore, records

QUERY_SERVICE = "emma.traces.v1.TraceQuery"
GET_TRACE = f"/{QUERY_SERVICE}/GetTrace"
LIST_TRACES = f"/{QUERY_SERVICE}/ListTraces"
# The default OTLP/gRPC port, so services need only OTEL_EXPORTER_OTLP_ENDPOINT's usual value.
DEFAULT_PORT = 4317
ORDERS = ("recent", "slowest")
MAX_LIST = 1000
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def traces_data(spans: list[SpanRecord]) -> trace_pb2.TracesData:
    """Spans as OTLP TracesData, one resource per span (attributes as strings)."""
    data = trace_pb2.TracesData()
    for span in spans:
        resource_spans = data.resource_spans.add(
            resource=resource_pb2.Resource(
                attributes=[
                    common_pb2.KeyValue(
                        key="service.name", value=common_pb2.AnyValue(string_value=span.service)
                    )
                ]
            )
        )
        out = resource_spans.scope_spans.add().spans.add(
            trace_id=bytes.fromhex(span.trace_id),
            span_id=bytes.fromhex(span.span_id),
            parent_span_id=bytes.fromhex(span.parent_span_id),
            name=span.name,
            kind=span.kind,
            start_time_unix_nano=span.start_ns,
            end_time_unix_nano=span.end_ns,
        )
        if span.error:
            out.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        for key, value in span.attributes.items():
            out.attributes.add(key=key, value=common_pb2.AnyValue(string_value=value))
    return data


class _Export(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: TraceStore) -> None:
        self.store = store

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.store.add(records(request))
        return trace_service_pb2.ExportTraceServiceResponse()


def _get_trace(store: TraceStore) -> Any:
    def get(request: wrappers_pb2.StringValue, context: grpc.ServicerContext) -> Any:
        trace_id = request.value.strip().lower()
        if not _TRACE_ID.match(trace_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "trace_id: expected 32 hex digits")
        spans = store.trace(trace_id)
        if not spans:
            context.abort(grpc.StatusCode.NOT_FOUND, f"trace_id: {trace_id} is not kept here")
        return traces_data(spans)

    return get


def _list_traces(store: TraceStore) -> Any:
    def list_(request: struct_pb2.Struct, context: grpc.ServicerContext) -> Any:
        fields = dict(request.fields.items())
        order = fields["order"].string_value if "order" in fields else "recent"
        if order not in ORDERS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"order: expected one of {ORDERS}")
        limit = fields["limit"].number_value if "limit" in fields else 20.0
        if not (1 <= limit <= MAX_LIST and limit == int(limit)):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"limit: expected 1..{MAX_LIST}")
        summaries = store.summaries()
        if order == "slowest":
            summaries.sort(key=lambda summary: summary.duration_ns, reverse=True)
        spans = [
            span for summary in summaries[: int(limit)] for span in store.trace(summary.trace_id)
        ]
        return traces_data(spans)

    return list_


class TraceServer:
    """Serves OTLP/gRPC export and the trace query on host:port (0: a free port)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        max_traces: int = DEFAULT_MAX_TRACES,
    ) -> None:
        self.store = TraceStore(max_traces)
        self.host = host
        self._requested_port = port
        self.port = 0
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://{self.address}"

    def start(self) -> TraceServer:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp"),
            # Without this a second receiver binds the same port and halves the traces.
            options=[("grpc.so_reuseport", 0)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Export(self.store), server)  # type: ignore[no-untyped-call]
        query = grpc.method_handlers_generic_handler(
            QUERY_SERVICE,
            {
                "GetTrace": grpc.unary_unary_rpc_method_handler(
                    _get_trace(self.store),
                    request_deserializer=wrappers_pb2.StringValue.FromString,
                    response_serializer=trace_pb2.TracesData.SerializeToString,
                ),
                "ListTraces": grpc.unary_unary_rpc_method_handler(
                    _list_traces(self.store),
                    request_deserializer=struct_pb2.Struct.FromString,
                    response_serializer=trace_pb2.TracesData.SerializeToString,
                ),
            },
        )
        server.add_generic_rpc_handlers((query,))
        try:
            self.port = server.add_insecure_port(f"{self.host}:{self._requested_port}")
        except RuntimeError:
            self.port = 0  # grpc raises for a taken port, or returns 0 (older versions)
        if self.port == 0:
            raise OSError(f"cannot bind {self.host}:{self._requested_port}")
        server.start()
        self._server = server
        return self

    def stop(self, grace: float | None = None) -> None:
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def __enter__(self) -> TraceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
