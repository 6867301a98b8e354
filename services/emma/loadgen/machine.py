"""The machine's CPU time while a target runs, from /proc/stat: how much its neighbours took.

On a virtual machine the hypervisor can give a core to another guest for a while; the
kernel counts that time as *steal*. Latency spikes of one run that the next run of the
same code does not show are often such moments, so every report says how much was stolen,
per second beside the latency and over the whole target.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence

# Sampled often enough that a one-second bucket is never read from a single interval.
SAMPLE_INTERVAL_S = 0.25


@dataclasses.dataclass(frozen=True)
class CpuTimes:
    """All cores' time so far, in clock ticks, at `at` (time.perf_counter)."""

    at: float
    total: int
    idle: int  # idle and waiting for I/O
    steal: int


def read_cpu_times(
    path: str = "/proc/stat", clock: Callable[[], float] = time.perf_counter
) -> CpuTimes | None:
    """The `cpu` line of /proc/stat; None where there is none (not Linux)."""
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice (man 5 proc); guest
    # time is already counted in user and nice.
    ticks = [int(value) for value in fields[1:9]]
    ticks += [0] * (8 - len(ticks))
    return CpuTimes(at=clock(), total=sum(ticks), idle=ticks[3] + ticks[4], steal=ticks[7])


@dataclasses.dataclass(frozen=True)
class Share:
    """Of the machine's time between two instants: percent stolen and percent idle."""

    steal_pct: float
    idle_pct: float


def share_between(samples: Sequence[CpuTimes], start: float, end: float) -> Share | None:
    """The share of steal and idle time in [start, end], the counters interpolated between
    the samples around each end; None when the samples do not cover the interval."""
    if end <= start or len(samples) < 2 or start < samples[0].at or end > samples[-1].at:
        return None
    first, last = _at(samples, start), _at(samples, end)
    total = last[0] - first[0]
    if total <= 0:
        return None
    return Share(
        steal_pct=round(100 * (last[2] - first[2]) / total, 1),
        idle_pct=round(100 * (last[1] - first[1]) / total, 1),
    )


def _at(samples: Sequence[CpuTimes], instant: float) -> tuple[float, float, float]:
    """(total, idle, steal) ticks at `instant`, linear between the two samples around it."""
    index = max(1, bisect.bisect_left([s.at for s in samples], instant))
    before, after = samples[index - 1], samples[index]
    weight = (instant - before.at) / (after.at - before.at) if after.at > before.at else 1.0

    def between(earlier: int, later: int) -> float:
        return earlier + weight * (later - earlier)

    return (
        between(before.total, after.total),
        between(before.idle, after.idle),
        between(before.steal, after.steal),
    )


class CpuSampler:
    """Reads /proc/stat every `interval_s` while in use (`async with`); keeps the samples."""

    def __init__(
        self,
        interval_s: float = SAMPLE_INTERVAL_S,
        read: Callable[[], CpuTimes | None] = read_cpu_times,
    ) -> None:
        self.interval_s = interval_s
        self._read = read
        self.samples: list[CpuTimes] = []
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    def share(self, start: float, end: float) -> Share | None:
        """Steal and idle over [start, end] (time.perf_counter), if sampled."""
        return share_between(self.samples, start, end)

    def summary(self, start: float, end: float) -> dict[str, float]:
        """`share` as a report gives it: `steal_pct` and `idle_pct`, or empty if not sampled."""
        share = self.share(start, end)
        return dataclasses.asdict(share) if share is not None else {}

    def _sample(self) -> bool:
        taken = self._read()
        if taken is not None:
            self.samples.append(taken)
        return taken is not None

    async def _run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._stopped.wait()
            self._sample()

    async def __aenter__(self) -> CpuSampler:
        # The first sample at once: the interval before the first request is covered.
        if self._sample():
            self._stopped.clear()
            self._task = asyncio.create_task(self._run(), name="emma.loadgen.cpu_sampler")
        return self

    async def __aexit__(self, *_: object) -> None:
        # The last sample is taken on leaving, after everything measured inside.
        self._stopped.set()
        if self._task is not None:
            await self._task
            self._task = None
