"""What one bare hop costs this machine: a gRPC echo against a plain TCP echo, by rate.

    .venv/bin/python -m bench.transport [--rates 50,200,1000] [--seconds 4] [--rounds 2]

For each rate, round after round, a server process answers one caller that sends a
Decide-sized request (180 bytes) at that pace and waits for the Decide-sized answer
(900 bytes) before the next: over gRPC (a `grpc.aio` server on uvloop, no interceptors, as
under Emma's services and the floor's echo chain), then over a plain TCP connection (a
uvloop protocol that answers every 180 bytes). It prints the server's CPU per call (on
its event loop's thread, and on its other threads: gRPC's pollers and event engine), the
caller's CPU per call (all its threads) and the round trip's p50 and p99.

What it shows here: a hop's cost is mostly waking threads up, not moving bytes. Calls
that arrive a few milliseconds apart find the server's threads asleep and cost several
times what calls arriving back to back do, and a gRPC call wakes more threads, more
often, than a TCP echo. CPU time comes from /proc/<pid>/task/*/schedstat (nanoseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import grpc
import uvloop

REQUEST = b"r" * 180
ANSWER = b"a" * 900
METHOD = "/emma.bench.v1.Echo/Echo"
# Unmeasured calls first: connections made, threads started, code paths warm.
WARMUP_CALLS = 100
TRANSPORTS = ("grpc", "tcp")


@dataclasses.dataclass(frozen=True)
class Hop:
    """One transport at one rate: CPU per call in microseconds, round trips in microseconds."""

    transport: str
    rate: float
    calls: int
    server_loop_us: float
    server_other_us: float
    caller_us: float
    p50_us: float
    p99_us: float


def thread_cpu_ns(pid: int) -> tuple[int, int]:
    """CPU time so far of `pid`'s main thread (its event loop) and of its other threads."""
    main = other = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        spent = int((task / "schedstat").read_text().split()[0])
        if int(task.name) == pid:
            main += spent
        else:
            other += spent
    return main, other


# --- servers (each in a process of its own: `python -m bench.transport --serve T`) -----------


async def _serve_grpc() -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return ANSWER

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                METHOD.split("/")[1], {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


class _TcpEcho(asyncio.Protocol):
    """Answers every whole request it has received, however the bytes were split."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.pending = 0

    def data_received(self, data: bytes) -> None:
        self.pending += len(data)
        whole, self.pending = divmod(self.pending, len(REQUEST))
        if whole:
            self.transport.write(ANSWER * whole)


async def _serve_tcp() -> None:
    server = await asyncio.get_running_loop().create_server(_TcpEcho, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def serve(transport: str) -> None:
    uvloop.run(_serve_grpc() if transport == "grpc" else _serve_tcp())


# --- the caller ------------------------------------------------------------------------------


def _grpc_caller(port: int) -> tuple[Callable[[], object], Callable[[], None]]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    echo = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    return lambda: echo(REQUEST, timeout=5), channel.close


def _tcp_caller(port: int) -> tuple[Callable[[], object], Callable[[], None]]:
    connection = socket.create_connection(("127.0.0.1", port))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call() -> None:
        connection.sendall(REQUEST)
        received = 0
        while received < len(ANSWER):
            chunk = connection.recv(len(ANSWER) - received)
            if not chunk:
                raise ConnectionError("the echo server closed the connection")
            received += len(chunk)

    return call, connection.close


def measure(transport: str, rate: float, seconds: float) -> Hop:
    """Starts a server for `transport` and calls it `rate` times a second for `seconds`."""
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.transport", "--serve", transport],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        call, close = (_grpc_caller if transport == "grpc" else _tcp_caller)(port)
        try:
            for _ in range(WARMUP_CALLS):
                call()
            count = max(1, round(rate * seconds))
            loop_before, other_before = thread_cpu_ns(server.pid)
            caller_before = time.process_time_ns()
            start = time.perf_counter()
            round_trips = []
            for index in range(count):
                # Paced from the start, so a slow answer does not push later calls back.
                wait = start + index / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                sent = time.perf_counter()
                call()
                round_trips.append(time.perf_counter() - sent)
            caller_ns = time.process_time_ns() - caller_before
            loop_after, other_after = thread_cpu_ns(server.pid)
        finally:
            close()
    finally:
        server.terminate()
        server.wait()
    quantiles = statistics.quantiles(round_trips, n=100, method="inclusive")
    return Hop(
        transport=transport,
        rate=rate,
        calls=count,
        server_loop_us=(loop_after - loop_before) / count / 1e3,
        server_other_us=(other_after - other_before) / count / 1e3,
        caller_us=caller_ns / count / 1e3,
        p50_us=statistics.median(round_trips) * 1e6,
        p99_us=quantiles[98] * 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200,1000", help="calls/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", choices=TRANSPORTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    rates = [float(rate) for rate in args.rates.split(",")]
    print(
        f"{'round':>5} {'transport':>9} {'rate/s':>7} {'calls':>6} "
        f"{'server loop us':>14} {'server other us':>15} {'caller us':>9} "
        f"{'p50 us':>7} {'p99 us':>7}"
    )
    for number in range(1, args.rounds + 1):
        for rate in rates:
            for transport in TRANSPORTS:
                hop = measure(transport, rate, args.seconds)
                print(
                    f"{number:>5} {hop.transport:>9} {hop.rate:>7.0f} {hop.calls:>6} "
                    f"{hop.server_loop_us:>14.0f} {hop.server_other_us:>15.0f} "
                    f"{hop.caller_us:>9.0f} {hop.p50_us:>7.0f} {hop.p99_us:>7.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
