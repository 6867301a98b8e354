"""Callers' connections: each its own, reaching every worker; a service's CPU counts its workers."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emma.loadgen import cpu, driver, floor, workload
from emma.loadgen.schedule import Schedule
from emma_client.base import WORKER_HEADER, WORKERS_HEADER


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, list[str]]]:
    """A real gRPC server answering the floor's method; yields its address and the peer
    (client address and port, so one per connection) of every call."""
    peers: list[str] = []

    async def call(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        peers.append(context.peer())
        return request

    server = grpc.aio.server()
    service, method = floor.METHOD.strip("/").split("/")
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                service, {method: grpc.unary_unary_rpc_method_handler(call)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", peers
    await server.stop(0)


@pytest.mark.parametrize("connections", [1, 3])
async def test_calls_spread_over_that_many_connections(
    echo: tuple[str, list[str]], connections: int
) -> None:
    address, peers = echo
    phase = driver.Phase(
        "floor", address, Schedule(rate=60, duration_s=0.5, warmup_s=0), 5.0, connections
    )
    recorder = await driver.run_phase(phase, workload.DEFAULT)
    assert recorder.issued == 30
    assert len(set(peers)) == connections
    # Every connection carried calls (each over the least busy one, ties in turn: the
    # exact shares depend on which calls overlapped).
    assert len(peers) == 30


class FirstConnectionsToOneWorker(health_pb2_grpc.HealthServicer):
    """Health checks as a port of `workers` workers would answer them, where the kernel
    gave the first `crowded` connections to worker "w0" and deals later ones in turn."""

    def __init__(self, workers: int, crowded: int) -> None:
        self.workers = workers
        self.crowded = crowded
        self.connections: list[str] = []

    async def Check(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> health_pb2.HealthCheckResponse:
        if context.peer() not in self.connections:
            self.connections.append(context.peer())
        order = self.connections.index(context.peer())
        worker = 0 if order < self.crowded else (order - self.crowded) % self.workers
        context.set_trailing_metadata(
            ((WORKER_HEADER, f"w{worker}"), (WORKERS_HEADER, str(self.workers)))
        )
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@contextlib.asynccontextmanager
async def _health_server(servicer: FirstConnectionsToOneWorker) -> AsyncIterator[str]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@contextlib.asynccontextmanager
async def _connections(address: str, count: int) -> AsyncIterator[list[grpc.aio.Channel]]:
    """`count` connections to `address`; closed at the end, whichever replaced the first."""
    channels = [driver.own_connection(address) for _ in range(count)]
    try:
        yield channels
    finally:
        for chan in channels:
            await chan.close(None)


async def _reached(channels: list[grpc.aio.Channel]) -> list[str | None]:
    return [(await driver.worker_reached(chan))[0] for chan in channels]


async def test_connections_all_on_one_worker_are_dialled_anew_until_both_are_reached() -> None:
    servicer = FirstConnectionsToOneWorker(workers=2, crowded=4)
    async with _health_server(servicer) as address, _connections(address, 4) as channels:
        assert await driver.reach_every_worker(address, channels) == 2
        # The fifth connection reached w0 again, the sixth w1.
        assert sorted(await _reached(channels)) == ["w0", "w0", "w0", "w1"]
        assert len(servicer.connections) == 6


async def test_dialling_anew_stops_when_another_worker_is_never_reached() -> None:
    # A port announced with two workers whose second is down: every connection reaches w0.
    servicer = FirstConnectionsToOneWorker(workers=2, crowded=10**6)
    async with _health_server(servicer) as address, _connections(address, 2) as channels:
        assert await driver.reach_every_worker(address, channels) == driver.REDIALS
        assert len(servicer.connections) == 2 + driver.REDIALS
        assert await _reached(channels) == ["w0", "w0"]


async def test_a_phase_reaches_every_worker_before_its_first_call() -> None:
    servicer = FirstConnectionsToOneWorker(workers=2, crowded=4)
    async with _health_server(servicer) as address:
        phase = driver.Phase(
            "decision.health", address, Schedule(rate=40, duration_s=0.25, warmup_s=0), 5.0, 4
        )
        recorder = await driver.run_phase(phase, workload.DEFAULT)
    assert recorder.issued == 10
    assert len(servicer.connections) == 6


async def test_connections_that_reach_every_worker_are_kept() -> None:
    servicer = FirstConnectionsToOneWorker(workers=2, crowded=1)
    async with _health_server(servicer) as address, _connections(address, 3) as channels:
        assert await driver.reach_every_worker(address, channels) == 0
        assert len(servicer.connections) == 3


async def test_a_server_that_names_no_worker_keeps_its_connections(
    echo: tuple[str, list[str]],
) -> None:
    address, peers = echo
    async with _connections(address, 2) as channels:
        assert await driver.reach_every_worker(address, channels) == 0
    # Its health check was refused (it has none) and no call reached the echo.
    assert peers == []


def test_a_process_cpu_includes_its_workers() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert child in cpu.descendants(parent.pid)
        own = cpu.cpu_seconds(parent.pid)
        # The busy child has used CPU of its own by now; the sleeping parent next to none.
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)"], check=True)
        tree = cpu.tree_cpu_seconds(parent.pid)
        assert own is not None and tree is not None
        assert tree >= own + 0.1
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)], check=False)
        parent.kill()
        parent.wait()
