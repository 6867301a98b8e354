"""Recent decisions kept in memory, so a reward can be learned from at once (online learning)."""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable


@dataclasses.dataclass
class Remembered:
    """What online learning needs of a decision: the example, the chosen action and its odds."""

    lines: list[str]
    index: int
    probability: float
    deferred: bool
    created: float
    activated: bool = False
    learned: bool = False
    # Costs that arrived before a deferred decision was activated; learned on activation.
    pending_costs: list[float] = dataclasses.field(default_factory=list)

    @property
    def learnable(self) -> bool:
        """Deferred decisions count only once shown; each decision is learned from once."""
        return (self.activated or not self.deferred) and not self.learned


class RecentDecisions:
    """A bounded LRU of recent decisions; entries older than the reward window are forgotten."""

    def __init__(
        self, capacity: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: collections.OrderedDict[str, Remembered] = collections.OrderedDict()
        self._capacity = capacity
        self._window_s = window_s
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def now(self) -> float:
        return self._clock()

    def remember(self, event_id: str, entry: Remembered) -> None:
        self._entries[event_id] = entry
        self._entries.move_to_end(event_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def get(self, event_id: str) -> Remembered | None:
        entry = self._entries.get(event_id)
        if entry is None:
            return None
        if self._clock() - entry.created > self._window_s:
            del self._entries[event_id]
            return None
        return entry
