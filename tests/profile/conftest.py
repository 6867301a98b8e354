"""Fixtures of the profile tests: configs and stores on a single Redis and on a Redis Cluster."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio.connection

from emma.profile.config import ProfileConfig
from emma.profile.store import ProfileStore
from emma.runtime.lean_redis import LeanConnection
from emma.runtime.redis_client import RedisClient, connect_any_redis
from tests.profile.builders import card

NOW = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CARD = card("card-4711")
# Decayed values are stored in thousandths relative to a landmark at most a half-life back,
# so each addition may be off by up to one thousandth when read.
FIXED_POINT = 0.001


def decayed(times: list[datetime], now: datetime, half_life_s: float, weight: float = 1.0) -> float:
    """The exact exponentially decayed sum the store approximates."""
    return sum(weight * 0.5 ** ((now - t).total_seconds() / half_life_s) for t in times)


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
async def make_store(backend_url: str) -> AsyncIterator[Callable[..., ProfileStore]]:
    """Builds stores on the backend with config fields changed, e.g. profile_ttl_days=1;
    closes them after the test."""
    made: list[ProfileStore] = []

    def make(**changes: Any) -> ProfileStore:
        config = dataclasses.replace(ProfileConfig(), redis_url=backend_url, port=0, **changes)
        made.append(ProfileStore(connect_any_redis(backend_url), config))
        return made[-1]

    yield make
    for store in made:
        await store.close()


@pytest.fixture
async def client(backend_url: str) -> AsyncIterator[RedisClient]:
    """A plain client of the same backend, to look at what the store wrote."""
    client = connect_any_redis(backend_url)
    yield client
    await client.aclose()


async def all_keys(client: RedisClient) -> list[str]:
    return sorted([key async for key in client.scan_iter("*")])


class CountingSends:
    """Counts what the clients send: one send is one round trip (a command or a pipeline)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        # redis-py's connections, and Emma's, which write their own way.
        for connection_class in (redis.asyncio.connection.AbstractConnection, LeanConnection):
            monkeypatch.setattr(
                connection_class,
                "send_packed_command",
                self._counting(connection_class.send_packed_command),
            )

    def _counting(self, original: Any) -> Any:
        async def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            await original(conn, command, check_health)

        return counting
