"""Fixtures shared by every test layer: a private Redis server started by the tests themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from emma.runtime.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server on a free port for the whole session; never the machine's own Redis."""
    with RedisServer() as server:
        yield server


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    """The private server's URL, flushed after each test (safe: the tests started that server)."""
    yield redis_server.url
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
