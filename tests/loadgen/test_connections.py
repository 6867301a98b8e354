"""Callers' connections: each is its own TCP connection, and a service's CPU counts its workers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import grpc
import pytest

from emma.loadgen import cpu, driver, floor, workload
from emma.loadgen.schedule import Schedule


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
