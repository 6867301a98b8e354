"""Traced asyncio Redis clients for a single node or a Redis Cluster, chosen by the URL."""

from __future__ import annotations

import redis.asyncio as redis
from opentelemetry.instrumentation.redis import RedisInstrumentor

# A Redis Cluster is named by any one of its nodes; the client discovers the others.
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}

RedisClient = redis.Redis | redis.RedisCluster


def is_cluster_url(url: str) -> bool:
    return url.startswith(tuple(CLUSTER_SCHEMES))


def connect_redis(url: str) -> redis.Redis:
    """A pooled asyncio client for one node at `url` with a span per command; connects lazily."""
    if is_cluster_url(url):
        raise ValueError(f"{url!r}: a Redis Cluster URL; this caller needs a single node")
    client = redis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=2.0, health_check_interval=30
    )
    RedisInstrumentor.instrument_client(client)
    return client


def connect_any_redis(url: str) -> RedisClient:
    """Like connect_redis, and a RedisCluster client for `redis+cluster://host:port` URLs."""
    for scheme, plain in CLUSTER_SCHEMES.items():
        if url.startswith(scheme):
            cluster = redis.RedisCluster.from_url(
                plain + url.removeprefix(scheme),
                decode_responses=True,
                socket_connect_timeout=2.0,
            )
            RedisInstrumentor.instrument_client(cluster)
            return cluster
    return connect_redis(url)
