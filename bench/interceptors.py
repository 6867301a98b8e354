"""What the services' server interceptors cost per call, in CPU time, over real gRPC.

    .venv/bin/python -m bench.interceptors [--calls 3000] [--rounds 5]

One process serves a unary echo method (Decide-sized request and answer) on loopback and
calls it, one call after another, under each interceptor stack in turn, round after
round; it prints the median CPU time per call of each stack. The tracer provider samples
1 % of traces by their parent (the benchmark's setting), without an exporter, and a
meter provider records the RPC metrics. Caller and server share the process, so what
differs between stacks is the server side's work:

- `none`: no interceptor (what a call costs this process at all);
- `instrumentation`: opentelemetry-instrumentation-grpc's server interceptor, with
  Emma's other interceptors (RPC metrics, undecodable requests);
- `emma`: Emma's stack as `emma.runtime.server.create_server` builds it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from emma.runtime.metrics import RpcMetricsInterceptor
from emma.runtime.tracing import configured_sampler, is_traced, server_interceptors
from emma.runtime.undecodable import UndecodableRequestInterceptor

METHOD = "/emma.bench.v1.Echo/Echo"
# A Decide request and its answer at 50 actions are about this size.
REQUEST = b"r" * 180
ANSWER = b"a" * 900
# Unmeasured calls first, a fixed number: `bench.instructions` subtracts runs of two sizes.
WARMUP_CALLS = 200
SAMPLING = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}


async def _echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return ANSWER


def stacks() -> dict[str, Callable[[], list[Any]]]:
    def others() -> list[Any]:
        return [RpcMetricsInterceptor(), UndecodableRequestInterceptor()]

    return {
        "none": list,
        "instrumentation": lambda: [
            aio_server_interceptor(filter_=is_traced),  # type: ignore[no-untyped-call]
            *others(),
        ],
        "emma": lambda: [*server_interceptors(), *others()],
    }


async def _serve(interceptors: list[Any]) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                METHOD.split("/")[1], {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def cpu_per_call(interceptors: list[Any], calls: int) -> float:
    """Microseconds of this process's CPU per call, after WARMUP_CALLS unmeasured ones."""
    server, port = await _serve(interceptors)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(METHOD, None, None)
            for _ in range(WARMUP_CALLS):
                await echo(REQUEST)
            started = time.process_time()
            for _ in range(calls):
                await echo(REQUEST)
            return (time.process_time() - started) / calls * 1e6
    finally:
        await server.stop(0)


async def run(calls: int, rounds: int, only: list[str] | None = None) -> dict[str, float]:
    chosen = {name: make for name, make in stacks().items() if not only or name in only}
    measured: dict[str, list[float]] = {name: [] for name in chosen}
    for number in range(1, rounds + 1):
        for name, make in chosen.items():
            measured[name].append(await cpu_per_call(make(), calls))
        print(
            f"round {number}: "
            + ", ".join(f"{name} {values[-1]:.0f} us" for name, values in measured.items()),
            flush=True,
        )
    return {name: statistics.median(values) for name, values in measured.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per stack and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--stack", choices=sorted(stacks()), action="append", help="only these (repeatable)"
    )
    args = parser.parse_args()
    trace.set_tracer_provider(TracerProvider(sampler=configured_sampler(SAMPLING)))
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    medians = asyncio.run(run(args.calls, args.rounds, args.stack))
    bare = medians.get("none", 0.0)
    print("stack            CPU us per call (median)   over none")
    for name, value in medians.items():
        print(f"{name:<16} {value:24.1f}   {value - bare:9.1f}")


if __name__ == "__main__":
    main()
