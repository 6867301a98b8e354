"""Worker processes sharing one port: spread of connections, restarts, and stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emma.loadgen import driver
from emma.runtime import workers
from emma.runtime.workers import Supervisor, reserve_port
from tests.runtime.worker_app import PID_METHOD, crash, serve_pid

ROOT = Path(__file__).resolve().parents[2]


async def _pid_of_new_connection(port: int) -> int | None:
    """The pid that answers on a fresh connection; None while nothing answers."""
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            ping = channel.unary_unary(PID_METHOD)
            return int(await ping(b"", timeout=2, wait_for_ready=False))
    except grpc.aio.AioRpcError:
        return None


def pids_answering(port: int, connections: int) -> set[int]:
    async def ask() -> list[int | None]:
        return [await _pid_of_new_connection(port) for _ in range(connections)]

    return {pid for pid in asyncio.run(ask()) if pid is not None}


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def supervised() -> Iterator[tuple[Supervisor, int]]:
    """Two workers on one port, supervised from a thread of the test process."""
    port = reserve_port("127.0.0.1")
    supervisor = Supervisor(2, functools.partial(serve_pid, port, 2), name="test")
    supervisor.start()
    runner = asyncio.new_event_loop()
    future = runner.run_in_executor(None, supervisor.supervise)
    try:
        yield supervisor, port
    finally:
        supervisor.stop(timeout_s=10)
        runner.run_until_complete(future)
        runner.close()


def test_workers_share_the_port_and_the_kernel_spreads_connections(
    supervised: tuple[Supervisor, int],
) -> None:
    supervisor, port = supervised
    answered: set[int] = set()

    def both_answered() -> bool:
        # Workers start at their own pace; new connections reach whichever is listening.
        answered.update(pids_answering(port, 10))
        return len(answered) == 2

    wait_until(both_answered, timeout=60)
    assert answered == set(supervisor.pids)


def test_the_workers_say_they_are_two_and_a_caller_reaches_both(
    supervised: tuple[Supervisor, int],
) -> None:
    _, port = supervised
    wait_until(lambda: len(pids_answering(port, 10)) == 2, timeout=60)

    async def reach() -> tuple[list[str | None], list[int | None]]:
        address = f"127.0.0.1:{port}"
        channels = [driver.own_connection(address) for _ in range(8)]
        try:
            await driver.reach_every_worker(address, channels)
            reached = [await driver.worker_reached(chan) for chan in channels]
        finally:
            for chan in channels:
                await chan.close(None)
        return [name for name, _ in reached], [count for _, count in reached]

    names, counts = asyncio.run(reach())
    assert counts == [2] * 8
    assert len(set(names)) == 2 and None not in names


def test_a_crashed_worker_is_restarted(supervised: tuple[Supervisor, int]) -> None:
    supervisor, port = supervised
    wait_until(lambda: len(pids_answering(port, 20)) == 2)
    victim = supervisor.pids[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in supervisor.pids and len(supervisor.pids) == 2)
    assert supervisor.restarts == 1
    wait_until(lambda: pids_answering(port, 20) == set(supervisor.pids))


def test_a_worker_that_keeps_crashing_is_restarted_ever_more_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "FIRST_RESTART_DELAY_S", 0.2)
    supervisor = Supervisor(1, crash, name="test")
    supervisor.start()
    loop = asyncio.new_event_loop()
    future = loop.run_in_executor(None, functools.partial(supervisor.supervise, poll_s=0.05))
    try:
        wait_until(lambda: supervisor.restarts >= 3, timeout=60)
    finally:
        supervisor.stop(timeout_s=5)
        loop.run_until_complete(future)
        loop.close()
    # Each quick death doubles the delay before the next start: 0.2, 0.4, 0.8 s, ...
    assert supervisor.restart_delay(0) >= 0.8


def test_sigterm_stops_every_worker_and_the_supervisor_exits_cleanly() -> None:
    port = reserve_port("127.0.0.1")
    parent = subprocess.Popen(
        [sys.executable, "-m", "tests.runtime.worker_app", str(port), "2"], cwd=ROOT
    )
    try:
        wait_until(lambda: len(pids_answering(port, 20)) == 2)
        children = pids_answering(port, 20)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=20) == 0
        for pid in children:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert pids_answering(port, 2) == set()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Supervisor(0, crash)


def _serving(port: int) -> bool:
    async def check() -> bool:
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.aio.AioRpcError:
            return False

    return asyncio.run(check())


def _workers_of(pid: int) -> list[int]:
    """The spawned worker processes among `pid`'s children."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    workers = []
    for child in (int(line) for line in found.stdout.split()):
        with contextlib.suppress(FileNotFoundError):  # it may have exited meanwhile
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
    return workers


@pytest.mark.parametrize("service", ["profile", "decision"])
def test_a_service_runs_in_workers(redis_url: str, service: str) -> None:
    """`python -m emma.SERVICE` with EMMA_SERVICE_WORKERS=2: two serving processes, one port."""
    port = reserve_port("127.0.0.1")
    prefix = f"EMMA_{service.upper()}"
    environ = {
        **os.environ,
        "EMMA_REDIS_URL": redis_url,
        f"{prefix}_PORT": str(port),
        f"{prefix}_METRICS_PORT": "0",
        f"{prefix}_WORKERS": "2",
    }
    parent = subprocess.Popen([sys.executable, "-m", f"emma.{service}"], env=environ, cwd=ROOT)
    try:
        wait_until(lambda: _serving(port), timeout=60)
        wait_until(lambda: len(_workers_of(parent.pid)) == 2, timeout=60)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
        assert not _serving(port)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
