"""Fixtures of the profile tests: a config on the private Redis, a store, a fixed clock."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from emma.profile.config import ProfileConfig
from emma.profile.store import ProfileStore
from emma.runtime.redis_client import connect_redis

NOW = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def config(redis_url: str) -> ProfileConfig:
    return dataclasses.replace(ProfileConfig(), redis_url=redis_url, port=0)


@pytest.fixture
async def store(config: ProfileConfig) -> AsyncIterator[ProfileStore]:
    store = ProfileStore(connect_redis(config.redis_url), config)
    yield store
    await store.close()
