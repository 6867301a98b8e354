"""Erasure reaches the outbox: one entry with the canonical id and every identifier, with the
deletion (single Redis and cluster), and release deletes an entry only when every group is done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from emma.profile.model import CustomerRef, IdentifierKind
from emma.profile.outbox import Erasure, release
from emma.profile.store import ProfileStore
from emma.profile.wallet import wallet_key
from emma.runtime.redis_client import RedisClient
from tests.profile.builders import card, cid, purchase

from .conftest import NOW

STREAM = "emma:profile-events"
APP = CustomerRef(IdentifierKind.APP_USER_ID, "anna-app")


async def erasures(client: RedisClient) -> list[Erasure]:
    entries: Any = await client.xrange(STREAM)
    found = [Erasure.of_entry(fields) for _, fields in entries]
    return [erasure for erasure in found if erasure is not None]


async def test_erasure_appends_one_entry_naming_every_identifier(
    store: ProfileStore, client: RedisClient
) -> None:
    await store.record_events([purchase("e1", cid("42"), NOW, ("brie", "cheese", 3.0))], NOW)
    await store.link_identity(cid("42"), card("card-4711"), NOW)
    await store.link_identity(cid("42"), APP, NOW)
    wallet = wallet_key("emma", "42")
    await client.hset(wallet, "dec-1", "offer|0|0")

    result = await store.erase_customer(card("card-4711"), NOW, STREAM, 1000)

    assert (result.erased, result.identifiers_removed) == (True, 3)
    [erasure] = await erasures(client)
    assert erasure.customer_id == "42"
    assert erasure.identifiers == (
        "1:42",
        "2:card-4711",
        "3:anna-app",
    )
    assert erasure.recorded_ms == int(NOW.timestamp() * 1000)
    # The wallet shares the profile's hash tag and goes in the same script.
    assert await client.exists(wallet) == 0
    assert await store.get_profile(APP, NOW) is None


async def test_a_profile_created_by_a_card_names_its_derived_id_and_the_card(
    store: ProfileStore, client: RedisClient
) -> None:
    await store.record_events([purchase("e1", card("c-1"), NOW, ("brie", "cheese", 3.0))], NOW)
    profile = await store.get_profile(card("c-1"), NOW)
    assert profile is not None

    await store.erase_customer(card("c-1"), NOW, STREAM, 1000)

    [erasure] = await erasures(client)
    assert erasure.customer_id == profile.customer_id
    assert erasure.customer_id.startswith("~")
    assert erasure.identifiers == ("2:c-1",)


async def test_an_unknown_customer_still_gets_an_entry_and_no_stream_means_none(
    store: ProfileStore, client: RedisClient
) -> None:
    # Counters elsewhere may be keyed by an identifier no profile holds (any longer).
    result = await store.erase_customer(card("never-seen"), NOW, STREAM, 1000)
    assert result.erased is False
    [erasure] = await erasures(client)
    assert erasure.identifiers == ("2:never-seen",)

    await store.record_events([purchase("e1", cid("7"), NOW, ("brie", "cheese", 3.0))], NOW)
    await store.erase_customer(cid("7"), NOW)
    assert len(await erasures(client)) == 1


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_release_deletes_an_entry_once_every_group_is_done(plain: aioredis.Redis) -> None:
    await plain.xgroup_create(STREAM, "triggers", id="$", mkstream=True)
    await plain.xgroup_create(STREAM, "decision", id="$")
    entry = await plain.xadd(STREAM, Erasure("42", ("1:42",), 1).fields())  # type: ignore[arg-type]
    await plain.xreadgroup("triggers", "t", {STREAM: ">"})

    # The decision group has not read it yet.
    assert await release(plain, STREAM, "triggers", entry) is False
    assert await plain.xlen(STREAM) == 1
    # It has read it but not finished: still pending there.
    await plain.xreadgroup("decision", "d", {STREAM: ">"})
    assert await release(plain, STREAM, "triggers", entry) is False
    assert await plain.xlen(STREAM) == 1
    assert await release(plain, STREAM, "decision", entry) is True
    assert await plain.xlen(STREAM) == 0
    # Releasing again (a redelivery) changes nothing.
    assert await release(plain, STREAM, "decision", entry) is False
