"""Rewards that Redis could not take, held in memory and written, in order, once it answers.

A Reward during a Redis restart used to fail at the caller's deadline: an error for a
dependency's fault. A reward with an idempotency key can be held instead, since writing
it twice (a timed-out write that Redis ran after all, then the held copy) counts once:
the learner drops rewards with a repeated key. The answer then says `held`. Like the
decision-log buffer (log_buffer.py) this is memory, not disk: a replica that stops before
Redis is back loses what it holds, and the caller was told so by `held`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import dataclasses
import logging
from datetime import datetime
from typing import Protocol

log = logging.getLogger(__name__)

# Delays between attempts while Redis does not answer: a refused connection costs little.
FIRST_RETRY_S = 0.05
LAST_RETRY_S = 0.5
# One write may take this long; one that did not finish is tried again (the key dedups).
WRITE_TIMEOUT_S = 1.0


@dataclasses.dataclass(frozen=True)
class HeldReward:
    event_id: str
    value: float
    kind: str
    time: datetime
    key: str


class RewardWriter(Protocol):
    """Where held rewards go (emma.decision.decision_log.DecisionStore)."""

    async def reward(
        self, event_id: str, value: float, kind: str, time: datetime, key: str = ""
    ) -> bool: ...


class OutcomeBuffer:
    """At most `capacity` keyed rewards, written oldest first by a task of its own."""

    def __init__(
        self,
        store: RewardWriter,
        capacity: int,
        *,
        retry_s: tuple[float, float] = (FIRST_RETRY_S, LAST_RETRY_S),
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self._store = store
        self.capacity = capacity
        self.first_retry_s, self.last_retry_s = retry_s
        self.write_timeout_s = write_timeout_s
        self._held: collections.deque[HeldReward] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.written = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, reward: HeldReward) -> bool:
        """Keeps a keyed reward to write later; False when full or closing (not kept)."""
        if not reward.key or self._closed or len(self._held) >= self.capacity:
            return False
        self._held.append(reward)
        if self._task is None:
            # A context of its own: the writes belong to no caller's trace.
            self._task = asyncio.create_task(
                self._drain(), name="emma.decision.outcome_buffer", context=contextvars.Context()
            )
        return True

    async def drained(self) -> None:
        """Returns once everything held is written (waits as long as Redis is away)."""
        while (task := self._task) is not None:
            await asyncio.shield(task)

    async def _write_oldest(self) -> bool:
        reward = self._held[0]
        try:
            async with asyncio.timeout(self.write_timeout_s):
                await self._store.reward(
                    reward.event_id, reward.value, reward.kind, reward.time, reward.key
                )
        except Exception:  # Redis still away: keep it, try again later
            return False
        # Only this task removes rewards and hold() only appends: the head is still it.
        self._held.popleft()
        self.written += 1
        return True

    async def _drain(self) -> None:
        delay = self.first_retry_s
        try:
            while self._held:
                if await self._write_oldest():
                    delay = self.first_retry_s
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.last_retry_s)
            log.info("held rewards written", extra={"written": self.written})
        finally:
            # No await between the empty check and here: hold() starts a new task if needed.
            self._task = None

    async def close(self, timeout_s: float) -> int:
        """Graceful shutdown: writes what is held within `timeout_s`; returns how many
        rewards are left (lost) and refuses new ones."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.drained()
        task = self._task
        if task is not None:  # Redis still away: stop trying
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = len(self._held)
        if left:
            log.warning("held rewards lost at shutdown", extra={"rewards": left})
            self.dropped += left
        return left
