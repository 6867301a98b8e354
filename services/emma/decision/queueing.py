"""How long Decide calls waited before their handler ran, and whether a queue of them stands."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

# Metadata a caller sends with the timeout (ms) it gave the call; the Python SDK and
# `emma bench` do. gRPC sends only what is left of a deadline when the call leaves, and
# starts its own clock when the call arrives: neither tells how long the call waited.
CALL_TIMEOUT_HEADER = "emma-call-timeout-ms"
# CoDel's interval: a queue whose shortest wait stays above the target this long does not
# drain by itself; a burst empties within it.
INTERVAL_S = 0.1
# While a queue stands, a call is shed once it waited the target or this part of its
# budget, whichever is longer (of the default 50 ms budget, a tenth is the 5 ms target).
BUDGET_PARTS = 10


def queued_s(metadata: Iterable[tuple[str, Any]] | None, remaining_s: float | None) -> float | None:
    """Seconds between the caller starting the call and its handler running here.

    The caller's own timeout less what the call has left now: the caller's queue, a retry's
    backoff, and this server's queue before the handler (on a replica that accepts calls
    more slowly than they come, they wait in gRPC, where no event-loop lag shows them).
    No clocks are compared, so hosts need not agree on the time. None when the caller did
    not say (or said nonsense, which is ignored, never an error), or set no deadline.
    """
    if remaining_s is None or not metadata:
        return None
    for key, value in metadata:
        if key == CALL_TIMEOUT_HEADER:
            try:
                timeout_s = float(value) / 1000.0
            except (TypeError, ValueError):
                return None
            return max(0.0, timeout_s - remaining_s) if timeout_s > 0 else None
    return None


class StandingQueue:
    """Whether calls queue up faster than this worker answers them, after CoDel (Nichols
    and Jacobson): the shortest wait of the calls seen in each 100 ms interval is above
    `target_s`. A burst leaves some call with a short wait in the interval; a standing
    queue does not.

    While the queue stands, every call waits about as long as the queue is deep, and full
    decisions only keep it so: the worker then answers calls that waited longer than the
    target with the fallback at once (`limit_s`), which drains the queue to about the
    target, and full decisions resume once an interval's shortest wait is below it.
    """

    def __init__(
        self,
        target_s: float,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target_s = target_s
        self.interval_s = interval_s
        self.clock = clock
        self.standing = False
        self._shortest = math.inf
        self._interval_ends = clock() + interval_s

    def limit_s(self, queued_s: float, budget_s: float) -> float:
        """Counts a call that waited `queued_s`; the wait past which it gets the fallback:
        while the queue stands the target, or a tenth of the budget when that is longer;
        the whole budget otherwise."""
        if self.target_s <= 0:
            return budget_s
        now = self.clock()
        if now >= self._interval_ends:
            # An interval without calls had no queue at all, nor had a whole interval
            # that went by since the last call.
            quiet = now >= self._interval_ends + self.interval_s
            self.standing = not quiet and self.target_s < self._shortest < math.inf
            self._shortest = math.inf
            self._interval_ends = now + self.interval_s
        self._shortest = min(self._shortest, queued_s)
        if not self.standing:
            return budget_s
        # A caller that gives a call more time tolerates more waiting: a closed-loop caller
        # with many calls in flight keeps a queue standing that shedding cannot drain
        # (each answer brings the next call), and should not be shed while well in budget.
        return min(max(self.target_s, budget_s / BUDGET_PARTS), budget_s)
