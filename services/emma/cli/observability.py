"""`emma up --metrics --traces`: /metrics ports for every service and a built-in trace receiver."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from emma.cli.mesh import PROCESSES, Mesh
from emma.traces.receiver import DEFAULT_PORT


def add_observability_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus /metrics: decision 9461, profile 9462, context 9463, learner "
        "9464, triggers 9465",
    )
    parser.add_argument(
        "--traces",
        action="store_true",
        help="run a trace receiver keeping recent traces for `emma trace` and `emma traces`; "
        "the services export to it",
    )
    parser.add_argument(
        "--traces-port",
        type=int,
        default=DEFAULT_PORT,
        help="its OTLP/gRPC port (default %(default)s)",
    )
    parser.add_argument(
        "--traces-keep", type=int, default=1000, help="traces it keeps (default %(default)s)"
    )


@contextlib.contextmanager
def trace_receiver(args: argparse.Namespace, mesh: Mesh) -> Iterator[object | None]:
    """With --traces: a receiver started before the mesh, which is pointed at it; else None."""
    if not getattr(args, "traces", False):
        yield None
        return
    from emma.traces.receiver import TraceServer

    server = TraceServer(host="127.0.0.1", port=args.traces_port, max_traces=args.traces_keep)
    try:
        server.start()
    except (OSError, RuntimeError) as error:
        print(f"emma up: cannot run the trace receiver: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    mesh.extra_env.update(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": server.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            # Short batches, so a trace is there to look at a moment after the call.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
    )
    try:
        yield server
    finally:
        # The services flush their last spans as they stop: the receiver goes after them.
        mesh.stop()
        server.stop(1.0)


def describe_observability(mesh: Mesh, receiver: object | None) -> str:
    """The lines `emma up` adds for metrics and traces (empty when neither is on)."""
    lines = []
    host = "127.0.0.1" if mesh.host in ("0.0.0.0", "") else mesh.host
    for service in PROCESSES:
        port = mesh.metrics_ports.get(service, 0)
        if port:
            lines.append(f"  {'metrics':<9} {service:<9} http://{host}:{port}/metrics")
    address = getattr(receiver, "address", None)
    if address:
        lines.append(
            f"  {'traces':<9} {address} (emma traces --slow --address {address}; "
            "emma trace TRACE_ID)"
        )
    return "".join(f"{line}\n" for line in lines)
