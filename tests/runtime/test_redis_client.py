"""Redis commands get a span only where one can be recorded; the sampler decides the rest."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as aioredis
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes
from redis.exceptions import TimeoutError as RedisTimeoutError

from emma.runtime.redis_client import connect_redis, traced
from emma.runtime.redis_server import RedisServer


class CountingSampler(Sampler):
    """Parent-based, roots sampled when their name says so; counts every question."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self._sampled = ParentBased(ALWAYS_ON)
        self._dropped = ParentBased(TraceIdRatioBased(0.0))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
    ) -> SamplingResult:
        self.asked.append(name)
        delegate = self._dropped if name == "unsampled" else self._sampled
        return delegate.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def get_description(self) -> str:
        return "counting"


async def test_spans_only_where_they_can_be_recorded(redis_url: str) -> None:
    sampler = CountingSampler()
    exported = InMemorySpanExporter()
    tracers = TracerProvider(sampler=sampler)
    tracers.add_span_processor(SimpleSpanProcessor(exported))
    client = traced(aioredis.Redis.from_url(redis_url, decode_responses=True), tracers)
    tracer = tracers.get_tracer("test")
    try:
        with tracer.start_as_current_span("unsampled"):
            await client.set("k", "unsampled")
            assert await client.get("k") == "unsampled"
            async with client.pipeline() as pipe:
                assert await pipe.set("p", "1").get("p").execute() == [True, "1"]
        # Inside an unsampled trace the instrumentation is skipped: no span, no question.
        assert sampler.asked == ["unsampled"]
        assert exported.get_finished_spans() == ()

        with tracer.start_as_current_span("sampled") as parent:
            assert await client.get("k") == "unsampled"
            async with client.pipeline() as pipe:
                assert await pipe.get("p").get("k").execute() == ["1", "unsampled"]
        (get, pipelined, root) = exported.get_finished_spans()
        assert root.name == "sampled"
        assert get.name == "GET"
        assert pipelined.name == "GET GET"
        for child in (get, pipelined):
            assert child.parent is not None
            assert child.parent.span_id == parent.get_span_context().span_id

        exported.clear()
        await client.incr("n")  # no trace: a root span the sampler decides on
        (incr,) = exported.get_finished_spans()
        assert incr.name == "INCRBY"
        assert incr.parent is None
        assert sampler.asked == ["unsampled", "sampled", "GET", "GET GET", "INCRBY"]
    finally:
        await client.aclose()
        tracers.shutdown()


async def test_commands_are_packed_by_hiredis_and_arrive_intact(redis_url: str) -> None:
    client = connect_redis(redis_url)
    try:
        packing = client.connection_pool.connection_class
        assert packing.pack_command is not aioredis.Connection.pack_command
        values = ["héllo ✓", "", "a b c", 7, 1.5, -0.1, b"\x00\xff"]
        for value in values:
            await client.set("emma:test:packed", value, ex=5)
            # As redis-py's own packing sends them: UTF-8 text, numbers as their repr.
            expected = value if isinstance(value, bytes) else str(value).encode()
            raw = await client.execute_command("GET", "emma:test:packed", NEVER_DECODE=True)
            assert raw == expected
        # A pipeline packs each of its commands the same way.
        async with client.pipeline(transaction=False) as pipe:
            assert await pipe.set("emma:test:packed", "x", ex=5).get(
                "emma:test:packed"
            ).execute() == [True, "x"]
        await client.delete("emma:test:packed")
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def impatient_client() -> AsyncIterator[aioredis.Redis]:
    """A client of a private Redis whose connections give up a read or a write after 0.3 s."""
    with RedisServer() as server:
        client = connect_redis(server.url)
        client.connection_pool.connection_kwargs["socket_timeout"] = 0.3
        try:
            yield client
        finally:
            await client.aclose()


@contextlib.asynccontextmanager
async def redis_stopped(client: aioredis.Redis) -> AsyncIterator[None]:
    """The client's Redis stopped (SIGSTOP) for the block, running again after it."""
    pid = int((await client.info("server"))["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def assert_answers_again(client: aioredis.Redis) -> None:
    # The connection given up on is dropped (what it had sent may still run, as with any
    # timed-out command); the next command gets a new one.
    assert await client.ping()
    assert await client.set("emma:test:after", "1") and await client.get("emma:test:after")


async def test_a_write_to_a_redis_that_stopped_reading_gives_up_and_the_next_reconnects() -> None:
    async with impatient_client() as client:
        async with redis_stopped(client):
            started = time.monotonic()
            # More than loopback's socket buffers hold: the write itself must wait.
            with pytest.raises(RedisTimeoutError, match="writing"):
                await client.set("emma:test:big", "x" * 32_000_000)
            assert time.monotonic() - started < 3.0
        await assert_answers_again(client)


async def test_a_read_from_a_redis_that_stopped_gives_up_and_the_next_reconnects() -> None:
    async with impatient_client() as client:
        async with redis_stopped(client):
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError, match="reading"):
                await client.get("emma:test:stopped")
            assert 0.25 < time.monotonic() - started < 3.0
        await assert_answers_again(client)


async def test_a_connection_outlives_the_read_timeouts_of_its_answered_commands() -> None:
    async with impatient_client() as client:
        first = await client.client_id()
        # Past the timeout of every read so far: none of their timers may still fire.
        await asyncio.sleep(0.6)
        assert await client.client_id() == first
