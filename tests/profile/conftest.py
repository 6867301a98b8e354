"""Fixtures of the profile tests: configs and stores on a single Redis and on a Redis Cluster."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from emma.profile.config import ProfileConfig
from emma.profile.store import ProfileStore
from emma.runtime.redis_client import RedisClient, connect_any_redis

NOW = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def config(redis_url: str) -> ProfileConfig:
    """A config on the private single Redis."""
    return dataclasses.replace(ProfileConfig(), redis_url=redis_url, port=0)


@pytest.fixture(params=["single", "cluster"])
def backend_url(request: pytest.FixtureRequest) -> str:
    """The private single Redis, then the private 3-master cluster."""
    fixture = "redis_url" if request.param == "single" else "redis_cluster_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def any_config(backend_url: str) -> ProfileConfig:
    return dataclasses.replace(ProfileConfig(), redis_url=backend_url, port=0)


@pytest.fixture
async def store(any_config: ProfileConfig) -> AsyncIterator[ProfileStore]:
    """A store on each backend in turn."""
    store = ProfileStore(connect_any_redis(any_config.redis_url), any_config)
    yield store
    await store.close()


@pytest.fixture
async def client(backend_url: str) -> AsyncIterator[RedisClient]:
    """A plain client of the same backend, to look at what the store wrote."""
    client = connect_any_redis(backend_url)
    yield client
    await client.aclose()


async def all_keys(client: RedisClient) -> list[str]:
    return sorted([key async for key in client.scan_iter("*")])
