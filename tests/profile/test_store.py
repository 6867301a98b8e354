"""The Redis store on a single Redis and on a 3-master cluster: events, reads, rights, expiry."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from redis.crc import key_slot

from emma.profile.config import ProfileConfig
from emma.profile.keys import home_id
from emma.profile.model import (
    Channel,
    ConsentChange,
    ConsentStatus,
    CustomerRef,
    IdentifierKind,
    LifeEvent,
    LifeEventKind,
    OfferResponseKind,
    Preferences,
    Purpose,
    QuietHours,
    SupportContact,
)
from emma.profile.record import CAPS, Record
from emma.profile.store import ProfileStore
from emma.runtime.redis_client import RedisClient
from tests.profile.builders import cid, event, offer, purchase
from tests.profile.conftest import (
    CARD,
    DAY,
    FIXED_POINT,
    NOW,
    CountingSends,
    all_keys,
    decayed,
)


async def test_unknown_customer_has_no_profile(store: ProfileStore) -> None:
    assert await store.get_profile(cid("nobody"), NOW) is None
    assert await store.get_profile(CARD, NOW) is None


async def test_events_build_the_profile(store: ProfileStore) -> None:
    batch = [
        purchase("e1", cid("42"), NOW - DAY, ("gouda", "cheese", 4.0), ("riesling", "wine", 8.0)),
        purchase("e2", cid("42"), NOW, ("emmentaler", "cheese", 5.0), store_id="koeln-dom"),
        event("e3", cid("42"), NOW, SupportContact(-0.6, "late", Channel.EMAIL)),
        offer("e4", cid("42"), NOW, OfferResponseKind.SHOWN, "o1"),
        offer("e5", cid("42"), NOW, OfferResponseKind.CLICKED, "o1"),
    ]
    result = await store.record_events(batch, NOW)
    assert (result.accepted, result.duplicates) == (5, 0)
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None
    assert profile.customer_id == "42"
    assert profile.rfm.purchase_count == 2
    assert profile.rfm.total_spend == pytest.approx(17.0)
    assert profile.rfm.last_purchase_at == NOW
    assert [a.key for a in profile.category_affinities] == ["cheese", "wine"]
    assert profile.sentiment == pytest.approx(-0.6, abs=1e-3)
    assert profile.home_store_id == "koeln-dom"
    [push] = profile.channels
    assert push.channel == Channel.PUSH
    assert (push.impressions, push.responses) == pytest.approx((1.0, 1.0), abs=FIXED_POINT)
    assert 0 < push.responsiveness < 1
    # 10:00 UTC is noon in Berlin (CEST); the purchase a day earlier counts 2^(-1/30).
    assert profile.active_hours[12] == pytest.approx(4.0 + 0.5 ** (1 / 30), abs=5 * FIXED_POINT)
    assert sum(profile.active_hours) == profile.active_hours[12]
    assert profile.identifiers == (cid("42"),)
    assert profile.created_at == NOW
    assert "new" in profile.segments
    [o1] = profile.offer_history
    assert (o1.offer_id, o1.last_shown, o1.last_clicked, o1.last_dismissed) == (
        "o1",
        NOW,
        NOW,
        None,
    )


async def test_replaying_a_batch_changes_nothing(store: ProfileStore, client: RedisClient) -> None:
    batch = [
        purchase("e1", cid("42"), NOW, ("gouda", "cheese", 4.0)),
        purchase("e2", cid("42"), NOW, ("brezel", "bakery", 1.0)),
    ]
    await store.record_events(batch, NOW)
    before = {key: await client.dump(key) for key in await all_keys(client)}
    ttls = {key: await client.ttl(key) for key in before}
    result = await store.record_events(batch, NOW + DAY)
    assert (result.accepted, result.duplicates) == (0, 2)
    after = {key: await client.dump(key) for key in await all_keys(client)}
    assert after == before
    assert {key: await client.ttl(key) for key in after} == pytest.approx(ttls, abs=2)


async def test_duplicates_within_one_batch_count_once(store: ProfileStore) -> None:
    ev = purchase("same", cid("42"), NOW, ("gouda", "cheese", 4.0))
    result = await store.record_events([ev, ev], NOW)
    assert (result.accepted, result.duplicates) == (1, 1)
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None and profile.rfm.purchase_count == 1


async def test_out_of_order_events_keep_the_latest_purchase(store: ProfileStore) -> None:
    await store.record_events([purchase("new", cid("42"), NOW, ("gouda", "cheese", 1.0))], NOW)
    await store.record_events(
        [purchase("old", cid("42"), NOW - 10 * DAY, ("gouda", "cheese", 1.0))], NOW
    )
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None
    assert profile.rfm.last_purchase_at == NOW
    assert profile.rfm.purchase_count == 2


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2)])
async def test_decay_is_exact_in_any_order(
    store: ProfileStore, any_config: ProfileConfig, order: tuple[int, ...]
) -> None:
    # Half-lives apart, so the landmark moves (and every stored value is rescaled) on the way.
    times = [NOW - 90 * DAY, NOW - 40 * DAY, NOW - 5 * DAY, NOW]
    for index in order:
        ev = purchase(f"e{index}", cid("42"), times[index], ("gouda", "cheese", 1.0))
        await store.record_events([ev], NOW)
    later = NOW + 30 * DAY
    profile = await store.get_profile(cid("42"), later)
    assert profile is not None
    [cheese] = profile.category_affinities
    expected = decayed(times, later, any_config.half_life_s)
    assert cheese.score == pytest.approx(expected, abs=len(times) * FIXED_POINT)


async def test_affinities_decay_with_the_half_life(store: ProfileStore) -> None:
    await store.record_events(
        [
            purchase("old", cid("42"), NOW - 60 * DAY, ("riesling", "wine", 1.0)),
            purchase("new", cid("42"), NOW, ("gouda", "cheese", 1.0)),
        ],
        NOW,
    )
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None
    scores = {a.key: a.score for a in profile.category_affinities}
    assert scores == pytest.approx({"cheese": 1.0, "wine": 0.25}, abs=FIXED_POINT)
    assert [a.key for a in profile.category_affinities] == ["cheese", "wine"]
    later = await store.get_profile(cid("42"), NOW + 30 * DAY)
    assert later is not None
    assert {a.key: a.score for a in later.category_affinities} == pytest.approx(
        {"cheese": 0.5, "wine": 0.125}, abs=FIXED_POINT
    )


async def test_capped_families_keep_the_strongest(store: ProfileStore, client: RedisClient) -> None:
    cap = CAPS["p"]
    favourite = [purchase(f"f{i}", cid("42"), NOW, ("fav", "x", 1.0)) for i in range(3)]
    once = [
        purchase(f"o{i}", cid("42"), NOW - i * timedelta(hours=1), (f"p{i:02d}", "x", 1.0))
        for i in range(cap + 5)
    ]
    await store.record_events([*favourite, *once], NOW)
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None
    kept = [a.key for a in profile.product_affinities]
    assert len(kept) == cap
    assert kept[0] == "fav"
    # The oldest (weakest) single purchases gave way.
    assert set(kept[1:]) == {f"p{i:02d}" for i in range(cap - 1)}
    assert profile.rfm.purchase_count == cap + 8  # counted even where not kept
    # The record keeps count of each capped family (Q), so one below its cap needs no scan.
    record = Record.parse(await client.hgetall("{emma:c:42}"))
    assert record.scalars["Q"] == record.family_counts() == f"p{cap}c1"


async def test_offer_history(store: ProfileStore, any_config: ProfileConfig) -> None:
    await store.record_events(
        [
            offer("a1", cid("42"), NOW - 30 * DAY, OfferResponseKind.DISMISSED, "coffee"),
            offer("a2", cid("42"), NOW - DAY, OfferResponseKind.SHOWN, "coffee"),
            offer("a3", cid("42"), NOW - DAY, OfferResponseKind.DISMISSED, "coffee"),
            offer("b1", cid("42"), NOW, OfferResponseKind.REDEEMED, "wine", Channel.RECEIPT),
        ],
        NOW,
    )
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None
    wine, coffee = profile.offer_history
    assert (wine.offer_id, wine.last_redeemed, wine.dismissals) == ("wine", NOW, 0.0)
    assert coffee.offer_id == "coffee"
    assert (coffee.last_shown, coffee.last_dismissed, coffee.last_clicked) == (
        NOW - DAY,
        NOW - DAY,
        None,
    )
    expected = decayed([NOW - 30 * DAY, NOW - DAY], NOW, any_config.half_life_s)
    assert coffee.dismissals == pytest.approx(expected, abs=2 * FIXED_POINT)
    channels = {stats.channel: stats for stats in profile.channels}
    assert channels[Channel.PUSH].impressions == pytest.approx(0.5 ** (1 / 30), abs=FIXED_POINT)
    assert channels[Channel.RECEIPT].responses == pytest.approx(1.0, abs=FIXED_POINT)


async def test_life_events_and_moves(store: ProfileStore) -> None:
    await store.record_events(
        [
            event("m2", cid("42"), NOW, LifeEvent(LifeEventKind.MOVED, NOW, "berlin-mitte")),
            event("m1", cid("42"), NOW, LifeEvent(LifeEventKind.MOVED, NOW - DAY, "koeln-dom")),
            event("b", cid("42"), NOW, LifeEvent(LifeEventKind.BIRTHDAY, None, "")),
        ],
        NOW,
    )
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None
    assert profile.home_store_id == "berlin-mitte"  # the latest move, not the last to arrive
    newest, older = profile.recent_life_events[:2], profile.recent_life_events[2]
    assert {e.kind for e in newest} == {LifeEventKind.MOVED, LifeEventKind.BIRTHDAY}
    assert {e.time for e in newest} == {NOW}
    assert (older.kind, older.time, older.store_id) == (LifeEventKind.MOVED, NOW - DAY, "koeln-dom")


async def test_a_read_for_decisions_leaves_out_only_what_no_decision_reads(
    store: ProfileStore,
) -> None:
    await store.record_events(
        [
            purchase("p1", cid("42"), NOW - DAY, ("gouda", "cheese", 4.0), store_id="koeln-dom"),
            event("m1", cid("42"), NOW, LifeEvent(LifeEventKind.MOVED, NOW, "berlin-mitte")),
            offer("o1", cid("42"), NOW, OfferResponseKind.DISMISSED, "o1"),
        ],
        NOW,
    )
    await store.link_identity(cid("42"), CARD, NOW)
    complete, wallet = await store.get_profile_and_wallet(CARD, NOW)
    partial, same_wallet = await store.get_profile_and_wallet(CARD, NOW, complete=False)
    assert complete is not None and partial is not None and wallet == same_wallet
    assert complete.identifiers and complete.product_affinities and complete.recent_life_events
    assert partial == dataclasses.replace(
        complete, identifiers=(), product_affinities=(), recent_life_events=()
    )


async def test_a_new_identifier_gets_a_profile_of_its_own(store: ProfileStore) -> None:
    await store.record_events([purchase("e1", CARD, NOW, ("gouda", "cheese", 1.0))], NOW)
    profile = await store.get_profile(CARD, NOW)
    assert profile is not None
    assert profile.customer_id == home_id(CARD)
    assert profile.customer_id.startswith("~") and CARD.value not in profile.customer_id
    assert profile.identifiers == (CARD,)
    # The canonical id reads the same profile.
    by_id = await store.get_profile(cid(profile.customer_id), NOW)
    assert by_id is not None and by_id.rfm == profile.rfm


async def test_preferences_with_and_without_a_mask(store: ProfileStore) -> None:
    full = Preferences(
        liked_products=("emmentaler",),
        disliked_products=("gouda",),
        preferred_channels=(Channel.PUSH, Channel.EMAIL),
        quiet_hours=QuietHours(22 * 60, 7 * 60, True),
        language="de-DE",
    )
    fields = ["liked_products", "liked_categories", "disliked_products", "disliked_categories",
              "preferred_channels", "quiet_hours", "language"]  # fmt: skip
    assert await store.update_preferences(cid("42"), full, fields, NOW) == full
    changed = await store.update_preferences(
        cid("42"), Preferences(language="en-GB"), ["language"], NOW
    )
    assert changed == dataclasses.replace(full, language="en-GB")
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None and profile.preferences == changed


async def test_consent_grant_then_withdraw(store: ProfileStore) -> None:
    def marketing(status: ConsentStatus, at: timedelta, channel: Channel) -> ConsentChange:
        return ConsentChange(Purpose.MARKETING, channel, status, NOW + at, "app-settings")

    await store.update_consent(
        cid("42"), [marketing(ConsentStatus.GRANTED, -DAY, Channel.UNSPECIFIED)], NOW
    )
    await store.update_consent(
        cid("42"), [marketing(ConsentStatus.GRANTED, -DAY, Channel.EMAIL)], NOW
    )
    effective = await store.update_consent(
        cid("42"), [marketing(ConsentStatus.WITHDRAWN, timedelta(0), Channel.UNSPECIFIED)], NOW
    )
    assert {(s.channel, s.status) for s in effective} == {
        (Channel.UNSPECIFIED, ConsentStatus.WITHDRAWN),
        (Channel.EMAIL, ConsentStatus.WITHDRAWN),
    }
    # A grant that happened earlier but arrives late does not resurrect consent.
    effective = await store.update_consent(
        cid("42"), [marketing(ConsentStatus.GRANTED, -2 * DAY, Channel.PUSH)], NOW
    )
    assert {s.status for s in effective} == {ConsentStatus.WITHDRAWN}
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None and profile.consents == effective
    export = await store.export_customer(cid("42"), NOW)
    assert export is not None and len(export.consent_ledger) == 4


async def test_every_key_of_a_profile_shares_one_slot_and_has_a_ttl(
    store: ProfileStore, client: RedisClient, any_config: ProfileConfig
) -> None:
    await store.record_events([purchase("e1", CARD, NOW, ("gouda", "cheese", 1.0))], NOW)
    customer_id = home_id(CARD)
    await store.update_preferences(CARD, Preferences(language="de"), ["language"], NOW)
    await store.update_consent(
        CARD,
        [ConsentChange(Purpose.SERVICE, Channel.SMS, ConsentStatus.GRANTED, NOW, "pos")],
        NOW,
    )
    await store.record_events(
        [event("l", CARD, NOW, LifeEvent(LifeEventKind.BIRTHDAY, None, ""))], NOW
    )
    keys = await all_keys(client)
    assert len(keys) == 6  # record, consent, ledger, preferences, life events, event ids
    assert {key_slot(key.encode()) for key in keys} == {key_slot(f"emma:c:{customer_id}".encode())}
    for key in keys:
        ttl = await client.ttl(key)
        assert 0 < ttl <= any_config.ttl_s, key


async def test_export_contains_what_was_written(store: ProfileStore) -> None:
    await store.record_events([purchase("e1", cid("42"), NOW, ("gouda", "cheese", 1.0))], NOW)
    await store.link_identity(cid("42"), CARD, NOW)
    await store.update_preferences(cid("42"), Preferences(language="de-DE"), ["language"], NOW)
    await store.update_consent(
        cid("42"),
        [ConsentChange(Purpose.MARKETING, Channel.EMAIL, ConsentStatus.GRANTED, NOW, "web")],
        NOW,
    )
    export = await store.export_customer(CARD, NOW)
    assert export is not None
    assert export.profile.customer_id == "42"
    assert export.profile.rfm.purchase_count == 1
    assert export.profile.preferences.language == "de-DE"
    [change] = export.consent_ledger
    assert (change.channel, change.source) == (Channel.EMAIL, "web")
    raw = json.loads(json.dumps(export.raw))
    assert raw["{emma:c:42}"]["pgouda"] == "1000"
    assert raw["{emma:c:42}"]["#2:card-4711"] == "1"
    assert raw["{emma:c:42}:f"] == {"language": '"de-DE"'}
    assert [key for key in raw if key.startswith("{emma:c:42}:e")]  # the event ids' hashes
    assert raw["{emma:c:" + home_id(CARD) + "}"] == {"X": "42"}  # the card's redirect
    assert await store.export_customer(cid("nobody"), NOW) is None


async def test_erase_removes_every_key_and_is_idempotent(
    store: ProfileStore, client: RedisClient
) -> None:
    await store.record_events([purchase("e1", cid("42"), NOW, ("gouda", "cheese", 1.0))], NOW)
    await store.record_events([purchase("o1", cid("other"), NOW, ("gouda", "cheese", 1.0))], NOW)
    other_keys = [key for key in await all_keys(client) if "other" in key]
    await store.link_identity(cid("42"), CARD, NOW)
    await store.update_preferences(cid("42"), Preferences(language="de"), ["language"], NOW)
    await store.update_consent(
        cid("42"),
        [ConsentChange(Purpose.MARKETING, Channel.EMAIL, ConsentStatus.GRANTED, NOW, "web")],
        NOW,
    )
    result = await store.erase_customer(CARD, NOW)
    assert (result.erased, result.identifiers_removed) == (True, 2)
    assert await all_keys(client) == sorted(other_keys)
    assert await store.get_profile(cid("42"), NOW) is None
    assert await store.get_profile(CARD, NOW) is None
    again = await store.erase_customer(cid("42"), NOW)
    assert (again.erased, again.identifiers_removed) == (False, 0)
    assert (await store.erase_customer(CARD, NOW)).erased is False


async def test_concurrent_writers_lose_nothing(store: ProfileStore) -> None:
    batches = [
        [purchase(f"e{i}-{j}", CARD, NOW, ("gouda", "cheese", 1.0)) for j in range(5)]
        for i in range(10)
    ]
    results = await asyncio.gather(*(store.record_events(batch, NOW) for batch in batches))
    assert sum(r.accepted for r in results) == 50
    changes = [
        ConsentChange(Purpose.MARKETING, channel, ConsentStatus.GRANTED, NOW, "app")
        for channel in (Channel.EMAIL, Channel.PUSH, Channel.SMS, Channel.WEB)
    ]
    await asyncio.gather(*(store.update_consent(CARD, [change], NOW) for change in changes))
    profile = await store.get_profile(CARD, NOW)
    assert profile is not None
    assert profile.rfm.purchase_count == 50  # one profile, although the card was new to all
    assert {s.channel for s in profile.consents} == {c.channel for c in changes}


async def test_event_ids_are_remembered_for_the_replay_window(
    store: ProfileStore, client: RedisClient, any_config: ProfileConfig
) -> None:
    window = timedelta(seconds=any_config.replay_window_s)
    batch = [purchase("e1", cid("42"), NOW, ("gouda", "cheese", 1.0))]
    await store.record_events(batch, NOW)
    [seen] = [key for key in await all_keys(client) if ":e" in key]
    assert 0 < await client.ttl(seen) <= 2 * window.total_seconds()
    assert await client.object("encoding", seen) == "intset"  # 8 bytes per event id
    # Within the window (and the next) a replay is recognised ...
    assert (await store.record_events(batch, NOW + window)).duplicates == 1
    # ... and forgotten once both have passed (the set expires): it does not grow forever.
    assert (await store.record_events(batch, NOW + 2 * window)).accepted == 1


async def test_profiles_expire_after_the_ttl(
    make_store: Callable[..., ProfileStore], client: RedisClient
) -> None:
    store = make_store(profile_ttl_days=1 / 86_400)
    await store.record_events([purchase("e1", cid("42"), NOW, ("gouda", "cheese", 1.0))], NOW)
    await store.link_identity(cid("42"), CARD, NOW)
    redirect = "{emma:c:" + home_id(CARD) + "}"
    for key in await all_keys(client):
        bound = store.identities.redirect_ttl_s if key == redirect else store.identities.ttl_s
        assert 0 < await client.pttl(key) <= bound * 1000, key
    await asyncio.sleep(1.2)
    assert await all_keys(client) == [redirect]  # the profile's own keys are gone
    assert await store.get_profile(cid("42"), NOW) is None
    assert await store.get_profile(CARD, NOW) is None  # a dangling redirect finds nothing


async def test_get_profile_is_one_round_trip(
    store: ProfileStore, backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = CustomerRef(IdentifierKind.APP_USER_ID, "app-1")
    await store.record_events([purchase("e1", CARD, NOW, ("gouda", "cheese", 1.0))], NOW)
    await store.link_identity(CARD, cid("crm-7"), NOW)
    await store.link_identity(CARD, app, NOW)
    for ref in (CARD, cid("crm-7"), app):  # warm up: scripts loaded, connections open
        assert await store.get_profile(ref, NOW) is not None
    sends = CountingSends(monkeypatch)

    async def trips(ref: Any) -> int:
        before = sends.count
        profile = await store.get_profile(ref, NOW)
        assert profile is not None and profile.customer_id == home_id(CARD)
        return sends.count - before

    assert await trips(cid(home_id(CARD))) == 1  # the canonical id
    assert await trips(CARD) == 1  # the identifier that created the profile
    # A linked identifier's home redirects: followed inside the script on a single Redis,
    # by a second script call on a cluster (its keys live in another slot).
    linked = 1 if backend_url.startswith("redis://") else 2
    assert await trips(app) == linked
    assert await trips(cid("crm-7")) == linked


async def test_a_big_batch_for_one_customer(store: ProfileStore) -> None:
    """More events and fields than one Lua unpack takes: the script works in slices."""
    batch = [
        purchase(f"e{i}", cid("42"), NOW - i * timedelta(minutes=1), (f"p{i}", f"c{i}", 1.0))
        for i in range(2_500)
    ]
    assert (await store.record_events(batch, NOW)).accepted == 2_500
    replay = await store.record_events([*batch[:1_200], batch[0]], NOW)
    assert (replay.accepted, replay.duplicates) == (0, 1_201)
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None and profile.rfm.purchase_count == 2_500
    assert len(profile.product_affinities) == CAPS["p"]
