"""Traced asyncio Redis clients for a single node or a Redis Cluster, chosen by the URL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.trace import TracerProvider
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

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


def traced(client: RedisClient, tracer_provider: TracerProvider | None = None) -> RedisClient:
    """Instruments `client` with a span per command, made only where one can be recorded.

    The instrumentation formats a command's arguments and starts its span before asking
    whether the span records: about 35 us of a command's 125 us here, three times a
    decision, for spans that at 1 % sampling are almost all dropped; for a pipeline, it
    also wraps its methods when it is made. Inside a trace that is
    not sampled, a Redis span would not be either (parent-based samplers follow the parent;
    ratio samplers decide by the trace id, which a child shares), so such commands skip the
    instrumentation; commands outside any trace still ask the sampler. `tracer_provider`:
    the global one when None.
    """
    RedisInstrumentor.instrument_client(client, tracer_provider=tracer_provider)
    # wrapt's wrappers, and what they wrap. A pipeline is gated where it is made: the
    # instrumentation wraps each new pipeline's methods and formats its commands on execute.
    command_with_span = client.execute_command
    command_without_span = command_with_span.__wrapped__  # type: ignore[union-attr]
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


class LeanConnection(AbstractConnection):
    """A connection that packs commands with hiredis (C), as redis-py's synchronous client
    does; its asyncio client packs them in Python, about a third of a command's client-side
    work here (a decision-log entry is 24 arguments). And one that bounds a write with
    `asyncio.timeout` where redis-py uses `asyncio.wait_for`, which on Python 3.11 runs
    every write as a task of its own. Each saves a few per cent of a decision's
    instructions (docs/performance.md).
    """

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        # As redis-py's, but for how the write is bounded.
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer = self._writer
        assert writer is not None  # connected above
        try:
            writer.writelines(command)
            # The transport takes the bytes at once; only draining waits, and only while
            # its buffer is over the high-water mark (a Redis that stopped reading).
            async with asyncio.timeout(self.socket_timeout):
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as error:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while writing to socket: {error}") from error
        except BaseException:
            # A write cut short leaves the connection in an unknown state: never reuse it.
            await self.disconnect(nowait=True)
            raise


def lean_connections(
    connection_class: type[AbstractConnection],
) -> type[AbstractConnection]:
    """`connection_class` packing its commands with hiredis and writing without a task per
    command (`LeanConnection`); itself without hiredis."""
    if not HIREDIS_AVAILABLE:
        return connection_class
    return type(f"Lean{connection_class.__name__}", (LeanConnection, connection_class), {})


def is_cluster_url(url: str) -> bool:
    return url.startswith(tuple(CLUSTER_SCHEMES))


def connect_redis(url: str) -> redis.Redis:
    """A pooled asyncio client for one node at `url`, traced (`traced`); connects lazily."""
    if is_cluster_url(url):
        raise ValueError(f"{url!r}: a Redis Cluster URL; this caller needs a single node")
    client = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry=reconnect_once(),
    )
    pool = client.connection_pool
    pool.connection_class = lean_connections(pool.connection_class)
    traced(client)
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
