"""Client of the trace receiver's query service (emma.traces.receiver)."""

from __future__ import annotations

import grpc
from google.protobuf import struct_pb2, wrappers_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from emma.traces.receiver import GET_TRACE, LIST_TRACES
from emma.traces.store import SpanRecord, TraceSummary, records, summarise


def _grouped(spans: list[SpanRecord]) -> dict[str, list[SpanRecord]]:
    traces: dict[str, list[SpanRecord]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    return traces


def get_trace(address: str, trace_id: str, timeout: float = 5.0) -> list[SpanRecord]:
    """The spans of one trace; raises grpc.RpcError (NOT_FOUND, INVALID_ARGUMENT, ...)."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            GET_TRACE,
            request_serializer=wrappers_pb2.StringValue.SerializeToString,
            response_deserializer=trace_pb2.TracesData.FromString,
        )
        return records(call(wrappers_pb2.StringValue(value=trace_id), timeout=timeout))


def list_traces(
    address: str, order: str = "recent", limit: int = 20, timeout: float = 5.0
) -> list[tuple[TraceSummary, list[SpanRecord]]]:
    """The `limit` most recent (or slowest) traces kept, in that order, with their spans."""
    request = struct_pb2.Struct()
    request.update({"order": order, "limit": limit})
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            LIST_TRACES,
            request_serializer=struct_pb2.Struct.SerializeToString,
            response_deserializer=trace_pb2.TracesData.FromString,
        )
        data = call(request, timeout=timeout)
    found = [
        (summarise(trace_id, spans), spans) for trace_id, spans in _grouped(records(data)).items()
    ]
    if order == "slowest":
        found.sort(key=lambda item: item[0].duration_ns, reverse=True)
    else:
        found.sort(key=lambda item: item[0].start_ns, reverse=True)
    return found
