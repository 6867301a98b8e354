"""Activate and Reward: record them for the learner, and learn online from recent decisions."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

import grpc
import redis.asyncio as redis

from emma.decision.bandit import Bandit
from emma.decision.memory import RecentDecisions, Remembered
from emma.runtime.errors import DomainError, NotFound

log = logging.getLogger(__name__)


class StoreUnavailable(DomainError):
    """Redis could not record the feedback; the caller should retry."""

    code = grpc.StatusCode.UNAVAILABLE


class FeedbackStore(Protocol):
    async def known(self, event_id: str) -> bool: ...

    async def activate(self, event_id: str, time: datetime) -> bool: ...

    async def reward(self, event_id: str, value: float, kind: str, time: datetime) -> None: ...


class Feedback:
    def __init__(self, bandit: Bandit, store: FeedbackStore, memory: RecentDecisions) -> None:
        self.bandit = bandit
        self.store = store
        self.memory = memory

    def _learn(self, entry: Remembered, cost: float) -> None:
        # Rewards are maximised, VW minimises cost.
        self.bandit.learn(entry.lines, entry.index, cost, entry.probability)
        entry.learned = True

    async def activate(self, event_id: str, time: datetime) -> bool:
        """True the first time; raises NotFound for a decision no replica logged (or expired)."""
        entry = self.memory.get(event_id)
        try:
            if entry is None and not await self.store.known(event_id):
                raise NotFound(f"event_id: no decision {event_id!r} within the reward window")
            first = await self.store.activate(event_id, time)
        except redis.RedisError as error:
            raise StoreUnavailable(f"activation not recorded: {type(error).__name__}") from error
        if first and entry is not None and not entry.activated:
            entry.activated = True
            if entry.pending_costs and entry.learnable:
                self._learn(entry, entry.pending_costs[0])
        return first

    async def reward(self, event_id: str, value: float, kind: str, time: datetime) -> bool:
        """Learns at once when this replica remembers the decision; always records the reward.

        Each decision is learned from online once (its first reward); the learner joins
        every reward later. Returns whether the event id is known.
        """
        entry = self.memory.get(event_id)
        if entry is not None:
            if entry.learnable:
                self._learn(entry, -value)
            elif entry.deferred and not entry.activated:
                entry.pending_costs.append(-value)
        try:
            await self.store.reward(event_id, value, kind, time)
            return entry is not None or await self.store.known(event_id)
        except redis.RedisError as error:
            raise StoreUnavailable(f"reward not recorded: {type(error).__name__}") from error
