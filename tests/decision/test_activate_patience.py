"""Activate of a decision Redis does not know yet: a recent one is looked for again (its entry
may wait in another replica's buffer); any other is NOT_FOUND at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from emma.decision.decision_log import DECISION_KEY, DecisionStore
from emma.decision.event_ids import new_event_id
from emma.decision.feedback import UNKNOWN_PATIENCE_S, Feedback, Recorded
from emma.runtime.errors import NotFound
from emma.runtime.redis_client import connect_redis

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = connect_redis(redis_url)
    yield connection
    await connection.aclose()


def feedback(client: aioredis.Redis) -> Feedback:
    return Feedback(DecisionStore(client, "emma:decisions", "emma:rewards", 1000, 60))


async def test_a_recent_decision_logged_a_moment_later_is_activated(
    client: aioredis.Redis,
) -> None:
    event_id = new_event_id()
    activating = asyncio.create_task(feedback(client).activate(event_id, NOW))
    await asyncio.sleep(0.2)
    assert not activating.done()
    # Another replica's buffer writes the entry (and its marker) now.
    await client.set(DECISION_KEY.format(event_id), "{}")
    assert await asyncio.wait_for(activating, 5) == Recorded(accepted=True)


async def test_an_unknown_decision_is_not_found_at_once_unless_recent(
    client: aioredis.Redis,
) -> None:
    an_hour_ago = new_event_id(time.time_ns() // 1_000_000 - 3_600_000)
    for event_id in (uuid.uuid4().hex, an_hour_ago):
        started = time.monotonic()
        with pytest.raises(NotFound):
            await feedback(client).activate(event_id, NOW)
        assert time.monotonic() - started < UNKNOWN_PATIENCE_S / 2
    # A recent one that never appears: NOT_FOUND once the patience is spent.
    started = time.monotonic()
    with pytest.raises(NotFound):
        await feedback(client).activate(new_event_id(), NOW)
    assert time.monotonic() - started >= UNKNOWN_PATIENCE_S - 0.1
