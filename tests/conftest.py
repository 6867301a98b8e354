"""Fixtures shared by every test layer: a private Redis server started by the tests themselves."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from emma.runtime.redis_server import RedisCluster, RedisServer

# Services the tests start serve no /metrics unless a test asks for a port: test runs side by
# side would otherwise compete for the fixed default ports.
for _service in ("DECISION", "PROFILE", "CONTEXT", "LEARNER", "TRIGGERS"):
    os.environ.setdefault(f"EMMA_{_service}_METRICS_PORT", "0")


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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A 3-master Redis Cluster of private redis-servers, started once, by the first test asking."""
    with RedisCluster(masters=3) as cluster:
        yield cluster


@pytest.fixture
async def redis_cluster_url(redis_cluster: RedisCluster) -> AsyncIterator[str]:
    """The cluster's `redis+cluster://` URL; every node is flushed after each test."""
    yield redis_cluster.url
    for port in redis_cluster.ports:
        client = aioredis.Redis(port=port)
        await client.flushall()
        await client.aclose()
