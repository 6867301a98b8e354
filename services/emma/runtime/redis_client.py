"""Traced asyncio Redis clients for a single node or a Redis Cluster, chosen by the URL."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.trace import TracerProvider
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from emma.runtime.lean_redis import LeanConnectionPool, execute_lean, lean_connections
from emma.runtime.tracing import in_unrecorded_trace

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


def traced(
    client: RedisClient,
    tracer_provider: TracerProvider | None = None,
    unrecorded: Callable[..., Awaitable[Any]] | None = None,
) -> RedisClient:
    """Instruments `client` with a span per command, made only where one can be recorded.

    The instrumentation formats a command's arguments and starts its span before asking
    whether the span records: about 35 us of a command's 125 us here, three times a
    decision, for spans that at 1 % sampling are almost all dropped; for a pipeline, it
    also wraps its methods when it is made. Inside a trace that is
    not sampled, a Redis span would not be either (parent-based samplers follow the parent;
    ratio samplers decide by the trace id, which a child shares), so such commands skip the
    instrumentation; commands outside any trace still ask the sampler. `tracer_provider`:
    the global one when None. `unrecorded` runs a command where no span is made (default:
    the client's own execute_command).
    """
    RedisInstrumentor.instrument_client(client, tracer_provider=tracer_provider)
    # wrapt's wrappers, and what they wrap. A pipeline is gated where it is made: the
    # instrumentation wraps each new pipeline's methods and formats its commands on execute.
    command_with_span = client.execute_command
    command_without_span = unrecorded or command_with_span.__wrapped__  # type: ignore[union-attr]
    pipeline_with_spans = client.pipeline
    pipeline_without_spans = pipeline_with_spans.__wrapped__  # type: ignore[union-attr]

    async def execute_command(*args: Any, **options: Any) -> Any:
        if in_unrecorded_trace():
            return await command_without_span(*args, **options)
        return await command_with_span(*args, **options)

    def pipeline(*args: Any, **options: Any) -> Any:
        if in_unrecorded_trace():
            return pipeline_without_spans(*args, **options)
        return pipeline_with_spans(*args, **options)

    client.execute_command = execute_command  # type: ignore[method-assign]
    client.pipeline = pipeline  # type: ignore[method-assign]
    return client


def is_cluster_url(url: str) -> bool:
    return url.startswith(tuple(CLUSTER_SCHEMES))


def connect_redis(url: str) -> redis.Redis:
    """A pooled asyncio client for one node at `url`, traced (`traced`); connects lazily.

    Its connections, pool and commands outside recorded traces are emma.runtime.lean_redis's.
    """
    if is_cluster_url(url):
        raise ValueError(f"{url!r}: a Redis Cluster URL; this caller needs a single node")
    pool = LeanConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry=reconnect_once(),
    )
    pool.connection_class = lean_connections(pool.connection_class)
    client = redis.Redis.from_pool(pool)
    traced(client, unrecorded=functools.partial(execute_lean, client))
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
            traced(cluster)
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
