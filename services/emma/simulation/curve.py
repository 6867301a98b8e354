"""The learning curve: average reward per window of decisions, and the run's summary."""

from __future__ import annotations

import collections
import dataclasses
import statistics
from collections.abc import Sequence

from emma.simulation.driver import Step


@dataclasses.dataclass(frozen=True)
class Window:
    """Averages over consecutive decisions [start, end)."""

    start: int
    end: int
    policy: float  # the served actions' expected reward (hidden probability)
    realised: float  # the Bernoulli rewards actually drawn
    oracle: float
    random: float
    baseline: float


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def window_of(steps: Sequence[Step], start: int, end: int) -> Window:
    part = steps[start:end]
    return Window(
        start=start,
        end=end,
        policy=_mean([s.chance for s in part]),
        realised=_mean([s.reward for s in part]),
        oracle=_mean([s.oracle for s in part]),
        random=_mean([s.random for s in part]),
        baseline=_mean([s.baseline for s in part]),
    )


def curve(steps: Sequence[Step], size: int) -> list[Window]:
    """Consecutive windows of `size` decisions (the last one may be shorter)."""
    return [
        window_of(steps, start, min(start + size, len(steps)))
        for start in range(0, len(steps), size)
    ]


@dataclasses.dataclass(frozen=True)
class Summary:
    """The last `tail` decisions, where the policy has learned what it will learn."""

    decisions: int
    tail: Window
    first: Window
    # Share of decisions whose candidate count matched the simulator's eligible set.
    agreement: float
    fallbacks: int
    degraded: int
    # Degraded part (profile, context, model, decision_log, ...) -> decisions.
    degraded_parts: dict[str, int]
    latency_p50_ms: float
    latency_p99_ms: float
    elapsed_s: float

    @property
    def of_oracle(self) -> float:
        return self.tail.policy / self.tail.oracle if self.tail.oracle else 0.0

    @property
    def over_baseline(self) -> float:
        return self.tail.policy / self.tail.baseline if self.tail.baseline else 0.0

    @property
    def over_random(self) -> float:
        return self.tail.policy / self.tail.random if self.tail.random else 0.0


def summarise(steps: Sequence[Step], tail: int, elapsed_s: float) -> Summary:
    latencies = sorted(s.latency_s for s in steps) or [0.0]
    cut = max(0, len(steps) - tail)
    return Summary(
        decisions=len(steps),
        tail=window_of(steps, cut, len(steps)),
        first=window_of(steps, 0, min(tail, len(steps))),
        agreement=_mean([float(s.candidates == s.eligible) for s in steps]),
        fallbacks=sum(s.fallback for s in steps),
        degraded=sum(bool(s.degraded) for s in steps),
        degraded_parts=dict(collections.Counter(part for s in steps for part in s.degraded)),
        latency_p50_ms=1000 * latencies[len(latencies) // 2],
        latency_p99_ms=1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        elapsed_s=elapsed_s,
    )
