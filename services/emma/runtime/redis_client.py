"""Traced asyncio Redis clients."""

from __future__ import annotations

import redis.asyncio as redis
from opentelemetry.instrumentation.redis import RedisInstrumentor


def connect_redis(url: str) -> redis.Redis:
    """A pooled asyncio client for `url` with a span per command; connects lazily."""
    client = redis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=2.0, health_check_interval=30
    )
    RedisInstrumentor.instrument_client(client)
    return client
