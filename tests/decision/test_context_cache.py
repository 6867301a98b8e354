"""The context cache by store and minute: hits equal a fresh Resolve, baskets included."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from emma.common.basket import BasketLine
from emma.context.config import ContextConfig
from emma.context.server import build_server as build_context
from emma.decision.context_cache import ContextCache
from emma.decision.dependencies import MeshDependencies
from emma.decision.domain import DecideInput, Situation, Touchpoint

NOON = datetime(2026, 12, 4, 11, 30, 5, tzinfo=UTC)  # Advent, a Friday lunch time in Berlin
CHEESE = BasketLine("emmentaler", "cheese", 2.0, 6.98)
WINE = BasketLine("riesling", " wine ", 1.0, 7.99)


@pytest.fixture
async def context_channel() -> AsyncIterator[grpc.aio.Channel]:
    server, port = build_context(dataclasses.replace(ContextConfig(), port=0))
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close(None)
        await server.stop(0)


def till(when: datetime, *basket: BasketLine, **fields: object) -> DecideInput:
    values: dict[str, object] = {
        "customer_kind": 1,
        "customer_value": "c-1",
        "touchpoint": Touchpoint.POS,
        "request_time": when,
        "store_id": "berlin-mitte",
        "device": "till",
        "basket": basket,
        "currency": "EUR",
    }
    values.update(fields)
    return DecideInput(**values)  # type: ignore[arg-type]


def same(cached: Situation, fresh: Situation) -> None:
    assert cached.features == fresh.features
    assert cached.local_time == fresh.local_time.replace(microsecond=cached.local_time.microsecond)
    assert cached.local_time.utcoffset() == fresh.local_time.utcoffset()
    assert dataclasses.replace(cached, local_time=fresh.local_time) == fresh


async def test_a_hit_equals_a_fresh_resolve_with_its_own_basket(
    context_channel: grpc.aio.Channel,
) -> None:
    cached = MeshDependencies(context_channel, context_channel, context_cache_entries=16)
    fresh = MeshDependencies(context_channel, context_channel)
    assert cached.context_cache is not None
    first = till(NOON, CHEESE)
    second = till(NOON + timedelta(seconds=40), CHEESE, WINE)
    empty = till(NOON + timedelta(seconds=50))
    same(await cached.situation(first, 5.0), await fresh.situation(first, 5.0))
    for request in (second, empty):
        same(await cached.situation(request, 5.0), await fresh.situation(request, 5.0))
    assert (cached.context_cache.hits, cached.context_cache.misses) == (2, 1)
    names = [name for name, _ in (await cached.situation(second, 5.0)).features]
    assert names.count("basket_category") == 2  # cheese and wine, stripped like the service


async def test_a_kept_situation_is_given_at_once_and_nothing_else(
    context_channel: grpc.aio.Channel,
) -> None:
    deps = MeshDependencies(context_channel, context_channel, context_cache_entries=16)
    fresh = MeshDependencies(context_channel, context_channel)
    later = till(NOON + timedelta(seconds=20), WINE)
    assert deps.cached_situation(later) is None  # not resolved yet: no answer, no lookup
    await deps.situation(till(NOON, CHEESE), 5.0)
    hit = deps.cached_situation(later)
    assert hit is not None
    same(hit, await fresh.situation(later, 5.0))
    # Only what the cache may answer: another minute, a location, no store.
    assert deps.cached_situation(till(NOON + timedelta(minutes=1))) is None
    assert deps.cached_situation(till(NOON, location=(52.52, 13.41))) is None
    assert deps.cached_situation(till(NOON, store_id="")) is None
    assert fresh.cached_situation(later) is None  # no cache at all
    assert deps.context_cache is not None
    assert (deps.context_cache.hits, deps.context_cache.misses) == (1, 1)


async def test_other_minutes_stores_and_locations_are_resolved(
    context_channel: grpc.aio.Channel,
) -> None:
    deps = MeshDependencies(context_channel, context_channel, context_cache_entries=16)
    cache = deps.context_cache
    assert cache is not None
    await deps.situation(till(NOON), 5.0)
    await deps.situation(till(NOON + timedelta(minutes=1)), 5.0)
    await deps.situation(till(NOON, store_id="hamburg-altona"), 5.0)
    await deps.situation(till(NOON, device="kiosk-2"), 5.0)
    located = till(NOON, location=(52.52, 13.41))
    await deps.situation(located, 5.0)
    await deps.situation(located, 5.0)
    await deps.situation(till(NOON, store_id=""), 5.0)
    assert cache.hits == 0
    assert cache.misses == 4  # the located and storeless ones are not even looked up
    await deps.situation(till(NOON + timedelta(seconds=30)), 5.0)
    assert cache.hits == 1


async def test_failures_are_not_cached_and_the_size_is_bounded() -> None:
    calls: list[DecideInput] = []
    fail = True

    async def resolve(request: DecideInput, timeout_s: float) -> Situation:
        calls.append(request)
        if fail:
            raise TimeoutError
        return Situation(True, request.request_time, "lunch", "winter", 5)

    cache = ContextCache(resolve, entries=2)
    with pytest.raises(TimeoutError):
        await cache.situation(till(NOON), 1.0)
    fail = False
    await cache.situation(till(NOON), 1.0)
    await cache.situation(till(NOON), 1.0)
    assert len(calls) == 2  # the failure was not kept; the success was
    await cache.situation(till(NOON, store_id="a"), 1.0)
    await cache.situation(till(NOON, store_id="b"), 1.0)  # evicts berlin-mitte, the oldest
    await cache.situation(till(NOON), 1.0)
    assert len(calls) == 5
    with pytest.raises(ValueError):
        ContextCache(resolve, entries=0)
