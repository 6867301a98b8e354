"""Recording one target's requests: HdrHistograms of latency, error and degraded counts."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from array import array
from collections.abc import Callable
from typing import Any

import grpc
from hdrh.histogram import HdrHistogram

from emma.loadgen.machine import CpuSampler
from emma.loadgen.schedule import Sent

# Microseconds, from 1 us to 10 minutes, with 3 significant digits (0.1 % resolution).
LOWEST_US = 1
HIGHEST_US = 600_000_000
DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a successful call reports beyond its latency (Decide's degraded parts)."""

    degraded: tuple[str, ...] = ()
    fallback: bool = False
    candidates: int = 0


OK = Outcome()


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def summary_ms(histogram: HdrHistogram) -> dict[str, float]:
    """p50, p90, p99, p99.9, max and mean in milliseconds (0 when nothing was recorded)."""
    if histogram.get_total_count() == 0:
        return {**dict.fromkeys(PERCENTILES, 0.0), "max": 0.0, "mean": 0.0}
    values = {
        name: histogram.get_value_at_percentile(percentile) / 1000
        for name, percentile in PERCENTILES.items()
    }
    values["max"] = histogram.get_max_value() / 1000
    values["mean"] = histogram.get_mean_value() / 1000
    return {name: round(value, 3) for name, value in values.items()}


def error_name(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return str(error.code().name)
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED_AT_END"
    return type(error).__name__


def _us(seconds: float) -> int:
    return min(HIGHEST_US, max(LOWEST_US, round(seconds * 1_000_000)))


class Recorder:
    """Collects the measured requests of one target; warm-up requests are counted apart.

    Latency runs from the moment a request was due (open loop); service time from the
    moment it was actually sent; send lag is the difference, the generator's own delay.
    Only successful calls enter the latency histograms: errors are counted by status code.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.start = start
        self.latency = new_histogram()
        self.service_time = new_histogram()
        self.send_lag = new_histogram()
        self.warmup = 0
        self.issued = 0
        self.ok = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.degraded: collections.Counter[str] = collections.Counter()
        self.fallbacks = 0
        self.candidates = 0
        # (seconds since start, latency in ms) of each successful request, for the plot.
        self.times = array("d")
        self.latencies_ms = array("d")
        self.first_due: float | None = None
        # The due time of the earliest successful request: where the timeline starts.
        self.first_answered_due: float | None = None
        self.last_sent = 0.0
        self.last_done = 0.0
        self.degraded_decisions = 0
        # CPU milliseconds per request of each process under test, when known; and of each
        # worker process of those that have several (how evenly their connections spread).
        self.cpu_ms: dict[str, float] = {}
        self.worker_cpu_ms: dict[str, list[float]] = {}
        # The load generator's own, which the machine's two cores carry too.
        self.generator_cpu_ms: float | None = None
        # The machine's time (steal, idle) sampled while this target ran (machine.py).
        self.machine: CpuSampler | None = None
        self.measuring: Callable[[int], bool] = lambda index: True

    def record(self, sent: Sent) -> None:
        if not self.measuring(sent.index):
            self.warmup += 1
            return
        self.issued += 1
        if self.first_due is None or sent.due < self.first_due:
            self.first_due = sent.due
        self.last_sent = max(self.last_sent, sent.sent)
        self.last_done = max(self.last_done, sent.done)
        self.send_lag.record_value(_us(sent.sent - sent.due))
        result = sent.result
        if isinstance(result, BaseException):
            self.errors[error_name(result)] += 1
            return
        self.ok += 1
        latency = sent.done - sent.due
        self.latency.record_value(_us(latency))
        self.service_time.record_value(_us(sent.done - sent.sent))
        self.times.append(sent.due - self.start)
        if self.first_answered_due is None or sent.due < self.first_answered_due:
            self.first_answered_due = sent.due
        self.latencies_ms.append(latency * 1000)
        if isinstance(result, Outcome) and result is not OK:
            self.degraded.update(result.degraded)
            self.degraded_decisions += bool(result.degraded)
            self.fallbacks += result.fallback
            self.candidates += result.candidates

    def result(self, name: str, rate: float) -> dict[str, Any]:
        """The JSON-ready summary of this target."""
        span = (self.last_sent - self.first_due) if self.first_due is not None else 0.0
        window = (self.last_done - self.first_due) if self.first_due is not None else 0.0
        return {
            "target": name,
            "rate": rate,
            "issued": self.issued,
            "ok": self.ok,
            "errors": dict(sorted(self.errors.items())),
            "error_count": sum(self.errors.values()),
            "degraded": dict(sorted(self.degraded.items())),
            # Answers with at least one degraded part; `degraded` counts the parts.
            "degraded_count": self.degraded_decisions,
            "fallbacks": self.fallbacks,
            "mean_candidates": round(self.candidates / self.ok, 2) if self.ok else 0.0,
            "warmup_requests": self.warmup,
            # Requests issued per second over the measured window, and answers per second.
            "issued_rate": round((self.issued - 1) / span, 1) if span > 0 else 0.0,
            "achieved_rate": round(self.ok / window, 1) if window > 0 else 0.0,
            "latency_ms": summary_ms(self.latency),
            "service_time_ms": summary_ms(self.service_time),
            "send_lag_ms": summary_ms(self.send_lag),
            "cpu_ms_per_request": dict(self.cpu_ms),
            "worker_cpu_ms_per_request": dict(self.worker_cpu_ms),
            "generator_cpu_ms_per_request": self.generator_cpu_ms,
            "machine": self.machine_share(),
        }

    def machine_share(self) -> dict[str, float]:
        """Percent of the machine's time stolen and idle from the first measured request's
        due time to the last answer; empty where it was not sampled."""
        if self.machine is None or self.first_due is None:
            return {}
        return self.machine.summary(self.first_due, self.last_done)
