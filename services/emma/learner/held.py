"""Outcomes of event ids not logged yet, held in stream order for a grace period, with a cap."""

from __future__ import annotations

import collections
import itertools
from typing import Generic, TypeVar

T = TypeVar("T")


class Held(Generic[T]):
    """Items by event id, each with the stream time (ms) it was logged at.

    Items come in stream order, which is time order, so the oldest is always first: the
    grace ends and the cap pushes out from the front. Nothing here is durable; the caller
    keeps what it holds recoverable elsewhere (the learner leaves it unacknowledged).
    """

    def __init__(self, grace_ms: int, cap: int) -> None:
        if cap < 1:
            raise ValueError("cap must be >= 1")
        self.grace_ms = grace_ms
        self.cap = cap
        self._order = itertools.count()
        # Insertion order is stream order; the sequence number lets an event's items leave
        # from the middle when its decision arrives.
        self._queue: collections.OrderedDict[int, tuple[str, int, T]] = collections.OrderedDict()
        self._events: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, event_id: str, ms: int, item: T) -> list[T]:
        """Holds `item`; returns the oldest items the cap pushed out, oldest first."""
        number = next(self._order)
        self._queue[number] = (event_id, ms, item)
        self._events.setdefault(event_id, []).append(number)
        pushed = []
        while len(self._queue) > self.cap:
            pushed.append(self._pop_oldest())
        return pushed

    def take(self, event_id: str) -> list[T]:
        """Removes and returns the items held for `event_id`, in stream order."""
        return [self._queue.pop(number)[2] for number in self._events.pop(event_id, ())]

    def expire(self, seen_ms: int) -> list[T]:
        """Removes and returns the items whose grace ended before `seen_ms`, oldest first."""
        ended = []
        while self._queue:
            _, ms, _ = next(iter(self._queue.values()))
            if ms + self.grace_ms >= seen_ms:
                break
            ended.append(self._pop_oldest())
        return ended

    def _pop_oldest(self) -> T:
        number, (event_id, _, item) = self._queue.popitem(last=False)
        numbers = self._events[event_id]
        numbers.remove(number)  # the event's oldest: first in its short list
        if not numbers:
            del self._events[event_id]
        return item
