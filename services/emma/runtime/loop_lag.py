"""How far behind the event loop runs: how late a timer that wakes every few ms fires."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars

from opentelemetry.metrics import Meter

from emma.runtime.metrics import LATENCY_BUCKETS_S, meter

# Often enough to notice within a fraction of a second; each wake-up costs microseconds.
INTERVAL_S = 0.02
# Consecutive late wake-ups before the loop counts as behind: a single blocking moment
# (a model load, a garbage collection) is not an overload.
SUSTAINED = 3


class LoopLag:
    """Samples the running loop's lag in a task of its own (`start`, `close`).

    `behind(limit_s)` is true while the last SUSTAINED samples were each later than
    `limit_s`: the loop has had more ready work than it could run for a while, and
    every callback, a new call's handler included, waits about that long to run. Every
    sample is also recorded as `emma.loop.lag` (seconds), a replica's saturation signal.
    """

    def __init__(
        self, interval_s: float = INTERVAL_S, sustained: int = SUSTAINED, on: Meter | None = None
    ) -> None:
        self.interval_s = interval_s
        self.samples: collections.deque[float] = collections.deque(maxlen=sustained)
        self._task: asyncio.Task[None] | None = None
        self._lag = (on or meter()).create_histogram(
            "emma.loop.lag",
            unit="s",
            description="how late the event loop ran a timer due now (sampled every 20 ms)",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )

    def start(self) -> None:
        # A context of its own: the sampling belongs to no request's trace.
        self._task = asyncio.create_task(
            self._run(), name="emma.loop_lag", context=contextvars.Context()
        )

    def behind(self, limit_s: float) -> bool:
        samples = self.samples
        return len(samples) == samples.maxlen and min(samples) > limit_s

    def recent_s(self) -> float:
        """The largest of the last SUSTAINED samples: how late the loop has run lately."""
        return max(self.samples, default=0.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, loop.time() - began - self.interval_s)
            self.samples.append(lag)
            self._lag.record(lag)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
