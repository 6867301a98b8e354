"""A Reward or an Activate that meets a restarting Redis is held until Redis is back (a
reward needs a key), or a reward waits for it within its patience, instead of failing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from emma.decision.decision_log import DECISION_KEY, DecisionStore
from emma.decision.feedback import Feedback, Recorded, StoreUnavailable
from emma.decision.outcome_buffer import OutcomeBuffer
from emma.faults.redis_aof import AofRedis
from emma.runtime.redis_client import connect_redis

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def redis_aof() -> AsyncIterator[AofRedis]:
    server = AofRedis()
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.close)


@pytest.fixture
async def client(redis_aof: AofRedis) -> AsyncIterator[aioredis.Redis]:
    connection = connect_redis(redis_aof.url)
    yield connection
    await connection.aclose()


@pytest.fixture
def store(client: aioredis.Redis) -> DecisionStore:
    return DecisionStore(client, "emma:decisions", "emma:rewards", 1000, 60)


async def test_a_keyed_reward_lands_once_when_redis_is_back_within_the_patience(
    redis_aof: AofRedis, client: aioredis.Redis, store: DecisionStore
) -> None:
    feedback = Feedback(store, redis_patience_s=10.0)
    # A pooled connection that the restart will break, as in a running service.
    await client.ping()
    await asyncio.to_thread(redis_aof.stop)
    pending = asyncio.create_task(feedback.reward("e1", 1.0, "purchase", NOW, key="order-1"))
    await asyncio.sleep(0.3)
    assert not pending.done()
    await asyncio.to_thread(redis_aof.start)
    # Recorded; the decision is unknown.
    assert await asyncio.wait_for(pending, 15) == Recorded(accepted=False)
    entries = await client.xrange("emma:rewards")
    assert [fields["key"] for _, fields in entries] == ["order-1"]


async def test_a_reward_without_key_fails_at_once_and_one_past_the_patience_fails(
    redis_aof: AofRedis, store: DecisionStore
) -> None:
    await asyncio.to_thread(redis_aof.stop)
    # Without a key a repeat could count twice: no waiting (the patience is far beyond 5 s).
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(Feedback(store, redis_patience_s=60.0).reward("e1", 1.0, "", NOW), 5)
    with pytest.raises(StoreUnavailable):
        await Feedback(store, redis_patience_s=0.2).reward("e1", 1.0, "", NOW, key="k")


async def test_keyed_rewards_are_held_while_redis_is_away_and_written_once_when_back(
    redis_aof: AofRedis, client: aioredis.Redis, store: DecisionStore
) -> None:
    held = OutcomeBuffer(store, capacity=2, retry_s=(0.05, 0.1))
    feedback = Feedback(store, redis_patience_s=0.2, held=held)
    await client.ping()
    await asyncio.to_thread(redis_aof.stop)
    # Answered at once, not at the caller's deadline: held, in arrival order.
    for key in ("order-1", "order-2"):
        recorded = await asyncio.wait_for(feedback.reward("e1", 1.0, "buy", NOW, key=key), 1)
        assert recorded == Recorded(accepted=True, held=True)
    assert len(held) == 2
    # Full: the next one waits out its patience and fails as before; without a key, at once.
    with pytest.raises(StoreUnavailable):
        await feedback.reward("e1", 1.0, "buy", NOW, key="order-3")
    with pytest.raises(StoreUnavailable):
        await feedback.reward("e1", 1.0, "buy", NOW)
    await asyncio.sleep(0.3)
    assert len(held) == 2  # still away: kept
    await asyncio.to_thread(redis_aof.start)
    await asyncio.wait_for(held.drained(), 15)
    entries = await client.xrange("emma:rewards")
    assert [fields["key"] for _, fields in entries] == ["order-1", "order-2"]
    assert (held.written, len(held)) == (2, 0)
    # Redis answers again: rewards are written at once, not held.
    assert await feedback.reward("e1", 1.0, "buy", NOW, key="order-4") == Recorded(False)


async def test_rewards_still_held_at_shutdown_are_counted_lost(
    redis_aof: AofRedis, store: DecisionStore
) -> None:
    held = OutcomeBuffer(store, capacity=10, retry_s=(0.05, 0.1))
    await asyncio.to_thread(redis_aof.stop)
    feedback = Feedback(store, held=held)
    assert (await feedback.reward("e1", 1.0, "buy", NOW, key="k1")).held
    assert await held.close(0.3) == 1
    assert held.dropped == 1
    # Closed: nothing more is held.
    with pytest.raises(StoreUnavailable):
        await Feedback(store, redis_patience_s=0.1, held=held).reward("e1", 1.0, "", NOW, key="k2")


async def test_activations_are_held_while_redis_is_away_and_count_the_contact_once_when_back(
    redis_aof: AofRedis, client: aioredis.Redis, store: DecisionStore
) -> None:
    # A decision some replica logged (its marker), which survives the restart (AOF).
    await client.set(DECISION_KEY.format("shown"), "{}")
    counted: list[str] = []

    async def count_contact(event_id: str, time: datetime) -> None:
        counted.append(event_id)

    held = OutcomeBuffer(store, capacity=10, on_activate=count_contact, retry_s=(0.05, 0.1))
    feedback = Feedback(store, on_activate=count_contact, held=held)
    await asyncio.to_thread(redis_aof.stop)
    for event_id in ("shown", "never-logged", "shown"):
        recorded = await asyncio.wait_for(feedback.activate(event_id, NOW), 1)
        assert recorded == Recorded(accepted=True, held=True)
    assert counted == []
    await asyncio.to_thread(redis_aof.start)
    await asyncio.wait_for(held.drained(), 15)
    # All written, in order (the learner counts the unknown one as such); the contact hook
    # runs at each decision's first activation only (the real one counts nothing for a
    # decision without a pending contact).
    entries = await client.xrange("emma:rewards")
    assert [fields["event_id"] for _, fields in entries] == ["shown", "never-logged", "shown"]
    assert counted == ["shown", "never-logged"]
    # Redis answers again: a repeat is answered at once, not held, and counts nothing.
    assert await feedback.activate("shown", NOW) == Recorded(accepted=False)
    assert (held.written, len(held), counted) == (3, 0, ["shown", "never-logged"])
