"""The benchmark waits for the profile-event consumers: at once when they have read and
acknowledged everything (entries are protobuf, not text), until the timeout when not."""

from __future__ import annotations

import redis.asyncio as aioredis

from emma.loadgen.run import consumers_caught_up

# An event as the profile service writes it: protobuf bytes, not valid UTF-8.
EVENT = {b"event": b"\x0a\x03\xe7\xb5\xff"}


async def test_consumers_that_read_and_acknowledged_everything_are_caught_up(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    ids = [await client.xadd("events", EVENT) for _ in range(3)]
    await client.xgroup_create("events", "consumers", id="0")
    await client.xreadgroup("consumers", "c", {"events": ">"})
    await client.xack("events", "consumers", *ids)
    assert await consumers_caught_up(redis_url, "events", timeout_s=5.0) < 1.0
    await client.aclose()


async def test_unread_or_unacknowledged_entries_are_waited_for_until_the_timeout(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await client.xadd("events", EVENT)
    await client.xgroup_create("events", "consumers", id="0")
    assert await consumers_caught_up(redis_url, "events", timeout_s=0.5) >= 0.5  # unread
    await client.xreadgroup("consumers", "c", {"events": ">"})
    assert await consumers_caught_up(redis_url, "events", timeout_s=0.5) >= 0.5  # pending
    await client.aclose()


async def test_no_stream_nothing_to_wait_for(redis_url: str) -> None:
    assert await consumers_caught_up(redis_url, "absent", timeout_s=5.0) < 1.0
