"""Traced asyncio Redis clients for a single node or a Redis Cluster, chosen by the URL."""

from __future__ import annotations

import redis.asyncio as redis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# A Redis Cluster is named by any one of its nodes; the client discovers the others.
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}

RedisClient = redis.Redis | redis.RedisCluster


def reconnect_once() -> Retry:
    """One immediate retry, on a new connection, of a command whose connection broke.

    After a Redis restart every pooled connection is dead, and without this the first
    command on each fails (a decision lost from the log, a Reward answered UNAVAILABLE).
    Only connection errors are retried, not timeouts: a stalled Redis must not double a
    caller's wait. A command that ran but whose reply was lost runs twice; every write of
    Emma survives that (the learner drops repeated decisions, activations and reward
    keys; profile events are deduplicated by event id).
    """
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def is_cluster_url(url: str) -> bool:
    return url.startswith(tuple(CLUSTER_SCHEMES))


def connect_redis(url: str) -> redis.Redis:
    """A pooled asyncio client for one node at `url` with a span per command; connects lazily."""
    if is_cluster_url(url):
        raise ValueError(f"{url!r}: a Redis Cluster URL; this caller needs a single node")
    client = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry=reconnect_once(),
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


async def ensure_group(client: RedisClient, stream: str, group: str, start: str) -> None:
    """Creates a consumer group on `stream` (and the stream) reading from `start` ("0": every
    entry, "$": new ones only); a group that exists already is left as it is."""
    try:
        await client.xgroup_create(stream, group, id=start, mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
