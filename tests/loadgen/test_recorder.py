"""HdrHistogram percentiles of known data, error and degraded counts, warm-up excluded."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from emma.loadgen.recorder import Outcome, Recorder
from emma.loadgen.schedule import Sent


def _sent(index: int, latency_s: float, result: object = None, *, lag_s: float = 0.0) -> Sent:
    due = 10.0 + index * 0.001
    return Sent(index, due, due + lag_s, due + latency_s, result)


def test_percentiles_of_known_latencies() -> None:
    recorder = Recorder()
    for ms in range(1, 1001):  # 1 .. 1000 ms, each once
        recorder.record(_sent(ms, ms / 1000))
    latency = recorder.result("known", 1000)["latency_ms"]
    # Three significant digits: within 0.1 % of the exact order statistics.
    assert latency["p50"] == pytest.approx(500, rel=2e-3)
    assert latency["p90"] == pytest.approx(900, rel=2e-3)
    assert latency["p99"] == pytest.approx(990, rel=2e-3)
    assert latency["p99.9"] == pytest.approx(999, rel=2e-3)
    assert latency["max"] == pytest.approx(1000, rel=2e-3)
    assert latency["mean"] == pytest.approx(500.5, rel=2e-3)


def test_sub_millisecond_latencies_keep_their_resolution() -> None:
    recorder = Recorder()
    for us in (150, 250, 350, 450):
        for _ in range(25):
            recorder.record(_sent(0, us / 1e6))
    latency = recorder.result("fast", 100)["latency_ms"]
    assert latency["p50"] == pytest.approx(0.25, abs=0.001)
    assert latency["max"] == pytest.approx(0.45, abs=0.001)


def test_latency_counts_from_due_time_and_service_time_from_sending() -> None:
    recorder = Recorder()
    recorder.record(_sent(0, 0.030, lag_s=0.020))
    result = recorder.result("late", 1)
    assert result["latency_ms"]["max"] == pytest.approx(30, rel=1e-3)
    assert result["service_time_ms"]["max"] == pytest.approx(10, rel=1e-3)
    assert result["send_lag_ms"]["max"] == pytest.approx(20, rel=1e-3)


def test_errors_degraded_parts_and_warmup() -> None:
    recorder = Recorder()
    recorder.measuring = lambda index: index >= 2
    recorder.record(_sent(0, 0.001, RuntimeError("warm-up, not counted")))
    recorder.record(_sent(1, 0.001))
    recorder.record(_sent(2, 0.002, Outcome(("profile", "context"), False, 50)))
    recorder.record(_sent(3, 0.002, Outcome(("profile",), True, 0)))
    recorder.record(_sent(4, 0.002, Outcome((), False, 50)))
    unavailable = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
    )
    recorder.record(_sent(5, 0.5, unavailable))
    recorder.record(_sent(6, 1.0, asyncio.CancelledError()))
    result = recorder.result("decide", 100)
    assert result["warmup_requests"] == 2
    assert result["issued"] == 5
    assert result["ok"] == 3
    assert result["errors"] == {"CANCELLED_AT_END": 1, "UNAVAILABLE": 1}
    assert result["error_count"] == 2
    assert result["degraded"] == {"context": 1, "profile": 2}
    assert result["degraded_count"] == 2
    assert result["fallbacks"] == 1
    assert result["mean_candidates"] == pytest.approx(100 / 3, rel=1e-2)
    # Failed calls are counted, not timed.
    assert result["latency_ms"]["max"] == pytest.approx(2, rel=1e-3)
