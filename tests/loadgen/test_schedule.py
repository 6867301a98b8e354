"""The schedule is open-loop: a slow server does not slow the sender, and waiting is counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from emma.loadgen.recorder import Recorder
from emma.loadgen.schedule import Schedule, Sent, run_open_loop

SERVICE_TIME_S = 0.02  # one request at a time: the server answers at most 50/s


@pytest.fixture
async def slow_server() -> AsyncIterator[str]:
    """A real gRPC server that serves one call at a time, each taking 20 ms."""
    lock = asyncio.Lock()

    async def call(request: bytes, context: object) -> bytes:
        async with lock:
            await asyncio.sleep(SERVICE_TIME_S)
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "t.Slow", {"Call": grpc.unary_unary_rpc_method_handler(call)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


def test_schedule_counts_warmup_and_measured_requests() -> None:
    schedule = Schedule(rate=200, duration_s=2, warmup_s=0.5)
    assert schedule.warmup_count == 100
    assert schedule.count == 500
    assert schedule.due(200) == pytest.approx(1.0)
    assert not schedule.measured(99)
    assert schedule.measured(100)
    with pytest.raises(ValueError):
        Schedule(rate=0, duration_s=1)


async def test_a_slow_server_does_not_reduce_the_issued_rate(slow_server: str) -> None:
    # 100/s against a server that manages 50/s: a closed loop would send 50 and report
    # 20 ms each; the open loop sends all 100 on time and reports the queue they met.
    schedule = Schedule(rate=100, duration_s=1.0)
    sent: list[Sent] = []
    recorder = Recorder()
    async with grpc.aio.insecure_channel(slow_server) as channel:
        await channel.channel_ready()
        method = channel.unary_unary("/t.Slow/Call")

        def record(one: Sent) -> None:
            sent.append(one)
            recorder.record(one)

        await run_open_loop(schedule, lambda i: method(b"x", timeout=10), record)

    assert len(sent) == 100
    assert all(not isinstance(s.result, BaseException) for s in sent)
    last_send = max(s.sent for s in sent)
    # Sending never waited for answers: when the last request left, dozens were still
    # queued at the server (a closed loop would have had none outstanding) ...
    assert sum(1 for s in sent if s.done > last_send) >= 30
    # ... and requests typically left when they were due.
    lags = sorted(s.sent - s.due for s in sent)
    assert lags[len(lags) // 2] < 0.05
    # ... and the latest ones waited behind the queue: latency is counted from due time.
    latest = sorted(sent, key=lambda s: s.due)[-10:]
    assert min(s.done - s.due for s in latest) > 0.5
    summary = recorder.result("slow", 100)
    assert summary["latency_ms"]["p99"] > 500
    assert summary["latency_ms"]["p50"] > 10 * SERVICE_TIME_S * 1000 / 2
    # Issued faster than the server could answer (50/s), which a closed loop cannot do.
    assert summary["issued_rate"] > 60
    # Answers come at the server's pace, well below the issued rate.
    assert summary["achieved_rate"] < 70


async def test_failures_are_results_and_stuck_calls_are_cancelled_at_the_end() -> None:
    schedule = Schedule(rate=50, duration_s=0.2)
    results: list[Sent] = []

    async def call(index: int) -> object:
        if index % 2:
            raise RuntimeError("boom")
        if index == 4:
            await asyncio.sleep(60)
        return index

    await run_open_loop(schedule, call, results.append, drain_timeout_s=0.2)
    assert len(results) == schedule.count
    failures = [s for s in results if isinstance(s.result, BaseException)]
    assert {type(s.result).__name__ for s in failures} == {"RuntimeError", "CancelledError"}
