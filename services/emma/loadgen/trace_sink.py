"""A trace sink: an OTLP/gRPC receiver that counts spans and drops them, for `emma bench`.

With it the services pay what exporting traces costs (recording, batching, serializing,
sending) without a collector on the machine.

    python -m emma.loadgen.trace_sink --port P
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from emma.runtime import eventloop
from emma.runtime.redis_server import free_port

SPANS_METHOD = "/emma.bench.v1.TraceSink/Spans"


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans += len(scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


async def serve(port: int) -> None:
    receiver = _Receiver()

    async def spans(request: bytes, context: object) -> bytes:
        return str(receiver.spans).encode()

    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "emma.bench.v1.TraceSink", {"Spans": grpc.unary_unary_rpc_method_handler(spans)}
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emma.loadgen.trace_sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(serve(args.port))
    return 0


class TraceSink:
    """The sink as a process; `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT should say."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TraceSink:
        command = [sys.executable, "-m", "emma.loadgen.trace_sink", "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            # A call that waits for the server, not channel_ready_future, whose polling
            # thread can outlive the channel (see emma.loadgen.floor._wait_ready).
            channel.unary_unary(SPANS_METHOD, None, None)(b"", timeout=20, wait_for_ready=True)
        return self

    def spans(self) -> int:
        """Spans received so far."""
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            return int(channel.unary_unary(SPANS_METHOD, None, None)(b"", timeout=5))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)


if __name__ == "__main__":
    raise SystemExit(main())
