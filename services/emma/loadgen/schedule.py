"""Open-loop arrivals: requests leave on a fixed schedule, whatever the answers are doing.

A closed loop (send, wait, send) slows down with the server and so hides the queueing a
real arrival stream would meet ("coordinated omission"). Here request i is due at
start + i / rate; it is sent then (or at once, if the generator itself fell behind), and
its latency is counted from the moment it was due, so time spent waiting anywhere,
the generator included, is part of the figure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """`rate` requests per second for `warmup_s` (not measured), then for `duration_s`."""

    rate: float
    duration_s: float
    warmup_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, not {self.rate}")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise ValueError("duration must be > 0 and warm-up >= 0")

    @property
    def warmup_count(self) -> int:
        return round(self.warmup_s * self.rate)

    @property
    def count(self) -> int:
        """Every request of the run, warm-up included."""
        return self.warmup_count + max(1, round(self.duration_s * self.rate))

    def due(self, index: int) -> float:
        """Seconds after the start at which request `index` is due."""
        return index / self.rate

    def measured(self, index: int) -> bool:
        return index >= self.warmup_count


@dataclasses.dataclass(frozen=True)
class Sent:
    """One request's times (perf_counter seconds) and what came back."""

    index: int
    due: float
    sent: float
    done: float
    result: object | BaseException


Call = Callable[[int], Awaitable[object]]
Record = Callable[[Sent], None]


async def run_open_loop(
    schedule: Schedule,
    call: Call,
    record: Record,
    *,
    clock: Callable[[], float] = time.perf_counter,
    drain_timeout_s: float = 30.0,
) -> float:
    """Issues `call(i)` for every request of `schedule` when it is due; returns the start time.

    Calls are never awaited before the next is issued: a slow or stuck server does not
    reduce the issued rate. `record` gets every request once it finished (or failed;
    the exception is the result). Requests still running `drain_timeout_s` after the
    last was issued are cancelled and recorded as failed.
    """
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()

    async def one(index: int, due: float) -> None:
        sent = clock()
        result: object | BaseException
        try:
            result = await call(index)
        except asyncio.CancelledError as error:  # still running when the drain timed out
            record(Sent(index, due, sent, clock(), error))
            raise
        except Exception as error:  # a failed request is a result, not the end of the run
            result = error
        record(Sent(index, due, sent, clock(), result))

    # A little lead, so the first requests are not due before the loop is ready.
    start = clock() + 0.005
    for index in range(schedule.count):
        due = start + schedule.due(index)
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(one(index, due))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        _, late = await asyncio.wait(set(running), timeout=drain_timeout_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    return start
