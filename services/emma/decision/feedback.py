"""Activate and Reward: recorded in Redis for the learner, which joins them to the decisions."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import grpc
import redis.asyncio as redis

from emma.decision.event_ids import age_s
from emma.decision.outcome_buffer import HeldActivation, HeldReward, OutcomeBuffer
from emma.runtime.errors import DomainError, InvalidArgument, NotFound

# Longest idempotency key accepted: an order id or a UUID fits many times over.
MAX_KEY_LENGTH = 256
# How long a Reward waits for a Redis that refuses connections (restarting, failing over)
# before it answers UNAVAILABLE; the caller's deadline ends the wait earlier. A restart
# with AOF takes about a second, and a caller's retries would each pay a round trip.
REDIS_PATIENCE_S = 1.0
FIRST_RETRY_DELAY_S = 0.05
MAX_RETRY_DELAY_S = 0.4
# A decision made this recently that Redis does not know yet may be in another replica's
# log buffer, written within moments of Redis answering again: Activate looks again after
# UNKNOWN_RECHECK_S, then twice as long each time, for up to UNKNOWN_PATIENCE_S, before it
# answers NOT_FOUND (a handful of round trips, in the busy seconds after an outage). Older
# or foreign ids are answered at once. Wide enough for clocks of replicas seconds apart.
RECENT_DECISION_S = 10.0
UNKNOWN_PATIENCE_S = 1.0
UNKNOWN_RECHECK_S = 0.05


class StoreUnavailable(DomainError):
    """Redis could not record the feedback; the caller should retry."""

    code = grpc.StatusCode.UNAVAILABLE


@dataclasses.dataclass(frozen=True)
class Recorded:
    """An outcome's answer: for a Reward, whether the decision is known; for an Activate,
    whether this was its first activation (both True while held); and whether it is held
    in memory until Redis answers."""

    accepted: bool
    held: bool = False


class FeedbackStore(Protocol):
    async def activate_known(self, event_id: str, time: datetime) -> bool | None: ...

    async def reward(
        self, event_id: str, value: float, kind: str, time: datetime, key: str = ""
    ) -> bool: ...


class Feedback:
    """Records activations and rewards; the replica itself learns nothing from them."""

    def __init__(
        self,
        store: FeedbackStore,
        on_activate: Callable[[str, datetime], Awaitable[None]] | None = None,
        redis_patience_s: float = REDIS_PATIENCE_S,
        held: OutcomeBuffer | None = None,
    ) -> None:
        self.store = store
        self.redis_patience_s = redis_patience_s
        # Activations and keyed rewards that Redis could not take wait here (it runs
        # `on_activate` for those it writes); None: they fail UNAVAILABLE.
        self.held = held
        # Runs once per decision, on its first activation: a deferred offer's contact is
        # counted against the frequency caps only now that it was really shown.
        self.on_activate = on_activate

    async def activate(self, event_id: str, time: datetime) -> Recorded:
        """Accepted the first time; raises NotFound for a decision no replica logged (or
        expired). While Redis is away the activation is held and answered so."""
        try:
            first = await self._activate_known(event_id, time)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            # Recording an activation twice counts it once: a timed-out one may have run.
            if self.held is not None and self.held.hold(HeldActivation(event_id, time)):
                return Recorded(accepted=True, held=True)
            raise StoreUnavailable(f"activation not recorded: {type(error).__name__}") from error
        except redis.RedisError as error:
            raise StoreUnavailable(f"activation not recorded: {type(error).__name__}") from error
        if first and self.on_activate is not None:
            await self.on_activate(event_id, time)
        return Recorded(accepted=first)

    async def _activate_known(self, event_id: str, time: datetime) -> bool:
        """Records the activation of a logged decision (True the first time), waiting a
        little for a recent one that Redis does not know yet; NotFound for any other."""
        give_up = _now() + UNKNOWN_PATIENCE_S
        delay = UNKNOWN_RECHECK_S
        while (first := await self.store.activate_known(event_id, time)) is None:
            age = age_s(event_id)
            recent = age is not None and abs(age) <= RECENT_DECISION_S
            if not recent or _now() >= give_up:
                raise NotFound(f"event_id: no decision {event_id!r} within the reward window")
            await asyncio.sleep(min(delay, max(0.0, give_up - _now())))
            delay *= 2
        return first

    async def reward(
        self, event_id: str, value: float, kind: str, time: datetime, key: str = ""
    ) -> Recorded:
        """Records the reward: whether the decision is known (within the window), or that
        the reward is held until Redis answers (a keyed one, while Redis is away).

        A reward for an unknown decision is recorded all the same: the learner counts it
        as unknown, and a decision logged late by a struggling Redis may still match.
        """
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidArgument("idempotency_key", f"must be at most {MAX_KEY_LENGTH} characters")
        give_up = _now() + self.redis_patience_s
        delay = FIRST_RETRY_DELAY_S
        while True:
            try:
                return Recorded(accepted=await self.store.reward(event_id, value, kind, time, key))
            except (redis.ConnectionError, redis.TimeoutError) as error:
                # A write that timed out may have run: the held copy has the same key.
                reward = HeldReward(event_id, value, kind, time, key)
                if self.held is not None and self.held.hold(reward):
                    return Recorded(accepted=True, held=True)
                # Repeated only with a key, after a refused connection: should the first
                # attempt have landed after all, the learner counts the key once. Without
                # one, or after a timeout, the caller decides.
                if isinstance(error, redis.TimeoutError) or not key or _now() + delay > give_up:
                    raise StoreUnavailable(
                        f"reward not recorded: {type(error).__name__}"
                    ) from error
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
            except redis.RedisError as error:
                raise StoreUnavailable(f"reward not recorded: {type(error).__name__}") from error


def _now() -> float:
    return time.monotonic()
