"""Emma's Redis clients outside recorded traces: redis-py's answers, errors and retries, leaner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from redis.exceptions import ResponseError

from emma.runtime import lean_redis
from emma.runtime.lean_redis import LeanConnectionPool
from emma.runtime.redis_client import connect_redis


@pytest.fixture
def tracers() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A provider whose root spans are never sampled, so their children are unrecorded."""
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(exported))
    yield provider, exported
    provider.shutdown()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(redis_url)
    yield client
    await client.aclose()


class CountingLean:
    """Counts the commands that took the lean path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commands: list[str] = []
        original = lean_redis._send_and_parse

        async def counting(*args: object) -> object:
            command = args[2]
            assert isinstance(command, tuple)
            self.commands.append(str(command[0]))
            return await original(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(lean_redis, "_send_and_parse", counting)


async def test_unrecorded_commands_answer_as_redis_py_does(
    client: aioredis.Redis,
    tracers: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, exported = tracers
    lean = CountingLean(monkeypatch)
    assert isinstance(client.connection_pool, LeanConnectionPool)
    await client.hset("emma:test:h", mapping={"a": "1", "b": "2"})
    script = client.register_script("return redis.call('HGET', KEYS[1], ARGV[1])")
    expected = (
        await client.hgetall("emma:test:h"),
        await client.xadd("emma:test:s", {"f": "v"}, id="1-1"),
        await script(keys=["emma:test:h"], args=["b"]),
    )
    assert lean.commands == []  # outside any trace: redis-py's path, the sampler asked
    with provider.get_tracer("test").start_as_current_span("unsampled"):
        # Reply callbacks apply (HGETALL's dict, XADD's id); a script runs by its SHA.
        answers = (
            await client.hgetall("emma:test:h"),
            await client.xadd("emma:test:s", {"f": "v"}, id="2-1"),
            await script(keys=["emma:test:h"], args=["b"]),
        )
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await client.incr("emma:test:h")
    assert answers == ({"a": "1", "b": "2"}, "2-1", "2")
    assert expected == ({"a": "1", "b": "2"}, "1-1", "2")
    assert lean.commands == ["HGETALL", "XADD", "EVALSHA", "INCRBY"]
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert [span.name for span in exported.get_finished_spans()] == []


async def test_a_script_redis_forgot_is_loaded_again(
    client: aioredis.Redis, tracers: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, _ = tracers
    script = client.register_script("return ARGV[1] .. '!'")
    with provider.get_tracer("test").start_as_current_span("unsampled"):
        assert await script(args=["one"]) == "one!"
        await client.script_flush()
        assert await script(args=["two"]) == "two!"


async def test_connections_are_reused_and_a_killed_one_is_replaced(
    client: aioredis.Redis, redis_url: str, tracers: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, _ = tracers
    pool = client.connection_pool
    with provider.get_tracer("test").start_as_current_span("unsampled"):
        assert await asyncio.gather(*(client.incr("emma:test:n") for _ in range(40)))
        opened = len(pool._available_connections)
        assert 1 <= opened <= 40 and not pool._in_use_connections
        for _ in range(20):
            await client.incr("emma:test:n")
        assert len(pool._available_connections) == opened  # reused, none new
        # Every pooled connection dies (as when Redis restarts): the next command retries
        # once on a new connection, as reconnect_once() says.
        killer = aioredis.Redis.from_url(redis_url)
        try:
            await killer.client_kill_filter(_type="normal", skipme=True)
        finally:
            await killer.aclose()
        assert await client.incr("emma:test:n") == 61
        assert not pool._in_use_connections


async def test_a_command_cancelled_mid_reply_leaves_no_reply_behind(
    client: aioredis.Redis, tracers: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, _ = tracers
    pool = client.connection_pool
    with provider.get_tracer("test").start_as_current_span("unsampled"):
        await client.set("emma:test:k", "v")
        waiting = asyncio.ensure_future(client.blpop(["emma:test:list"], timeout=0.5))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not pool._in_use_connections
        # Had the cancelled connection gone back with BLPOP's reply still to come, a
        # later command on it would read that reply as its own.
        await client.rpush("emma:test:list", "late")
        await asyncio.sleep(0.6)
        for _ in range(3):
            assert await client.get("emma:test:k") == "v"
        assert await client.lpop("emma:test:list") == "late"
