"""The Redis store against a real redis-server: atomicity, idempotency, decay, consent, rights."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from emma.profile.aggregates import Decayed
from emma.profile.config import ProfileConfig
from emma.profile.model import (
    Channel,
    ConsentChange,
    ConsentStatus,
    CustomerRef,
    IdentifierKind,
    LifeEvent,
    LifeEventKind,
    OfferResponse,
    OfferResponseKind,
    Preferences,
    Purpose,
    QuietHours,
    SupportContact,
)
from emma.profile.store import ProfileStore
from emma.runtime.errors import FailedPrecondition, NotFound
from tests.profile.builders import cid, event, purchase
from tests.profile.conftest import NOW

DAY = timedelta(days=1)
CARD = CustomerRef(IdentifierKind.LOYALTY_CARD, "card-4711")


@pytest.fixture
async def client(redis_url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(redis_url, decode_responses=True)


async def all_keys(client: aioredis.Redis) -> list[str]:
    return sorted([key async for key in client.scan_iter("*")])


async def test_unknown_customer_has_no_profile(store: ProfileStore) -> None:
    assert await store.get_profile(cid("nobody"), NOW) is None
    assert await store.get_profile(CARD, NOW) is None


async def test_events_build_the_profile(store: ProfileStore) -> None:
    batch = [
        purchase("e1", cid("42"), NOW - DAY, ("gouda", "cheese", 4.0), ("riesling", "wine", 8.0)),
        purchase("e2", cid("42"), NOW, ("emmentaler", "cheese", 5.0), store_id="koeln-dom"),
        event("e3", cid("42"), NOW, SupportContact(-0.6, "late", Channel.EMAIL)),
        event("e4", cid("42"), NOW, OfferResponse(OfferResponseKind.SHOWN, "o1", "", Channel.PUSH)),
        event(
            "e5", cid("42"), NOW, OfferResponse(OfferResponseKind.CLICKED, "o1", "", Channel.PUSH)
        ),
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
    assert profile.sentiment == pytest.approx(-0.6)
    assert profile.home_store_id == "koeln-dom"
    [push] = profile.channels
    assert (push.channel, push.impressions, push.responses) == (Channel.PUSH, 1.0, 1.0)
    assert 0 < push.responsiveness < 1
    # 10:00 UTC is noon in Berlin (CEST); the purchase a day earlier counts 2^(-1/30).
    assert profile.active_hours[12] == pytest.approx(4.0 + 0.5 ** (1 / 30))
    assert sum(profile.active_hours) == profile.active_hours[12]
    assert profile.identifiers == (cid("42"),)
    assert profile.created_at == NOW
    assert "new" in profile.segments


async def test_replaying_a_batch_changes_nothing(
    store: ProfileStore, client: aioredis.Redis
) -> None:
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


async def test_stored_decay_matches_the_reference_maths_in_any_order(
    store: ProfileStore, config: ProfileConfig
) -> None:
    times = [NOW - 40 * DAY, NOW, NOW - 5 * DAY, NOW - 90 * DAY]
    for index, time in enumerate(times):
        await store.record_events(
            [purchase(f"e{index}", cid("42"), time, ("gouda", "cheese", 1.0))], NOW
        )
    reference = Decayed((1.0,), times[0].timestamp())
    for time in times[1:]:
        reference = reference.add((1.0,), time.timestamp(), config.half_life_s)
    profile = await store.get_profile(cid("42"), NOW + 30 * DAY)
    assert profile is not None
    [cheese] = profile.category_affinities
    expected = reference.values_at((NOW + 30 * DAY).timestamp(), config.half_life_s)[0]
    assert cheese.score == pytest.approx(expected, rel=1e-12)


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
    assert scores == pytest.approx({"cheese": 1.0, "wine": 0.25})
    assert [a.key for a in profile.category_affinities] == ["cheese", "wine"]
    later = await store.get_profile(cid("42"), NOW + 30 * DAY)
    assert later is not None
    assert {a.key: a.score for a in later.category_affinities} == pytest.approx(
        {"cheese": 0.5, "wine": 0.125}
    )


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


async def test_a_new_identifier_gets_a_fresh_profile(store: ProfileStore) -> None:
    await store.record_events([purchase("e1", CARD, NOW, ("gouda", "cheese", 1.0))], NOW)
    profile = await store.get_profile(CARD, NOW)
    assert profile is not None
    assert len(profile.customer_id) == 32 and profile.customer_id != CARD.value
    assert profile.identifiers == (CARD,)


async def test_link_identity(store: ProfileStore) -> None:
    await store.record_events([purchase("e1", cid("42"), NOW, ("gouda", "cheese", 1.0))], NOW)
    result = await store.link_identity(cid("42"), CARD, NOW)
    assert (result.customer_id, result.merged) == ("42", False)
    profile = await store.get_profile(CARD, NOW)
    assert profile is not None and profile.customer_id == "42"
    assert set(profile.identifiers) == {cid("42"), CARD}
    # Linking again is a no-op; an event by card lands on the same profile.
    assert (await store.link_identity(cid("42"), CARD, NOW)).customer_id == "42"
    await store.record_events([purchase("e2", CARD, NOW, ("gouda", "cheese", 1.0))], NOW)
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None and profile.rfm.purchase_count == 2


async def test_linking_an_identifier_of_another_profile_is_refused(store: ProfileStore) -> None:
    await store.record_events([purchase("e1", cid("42"), NOW, ("gouda", "cheese", 1.0))], NOW)
    await store.record_events([purchase("e2", cid("43"), NOW, ("gouda", "cheese", 1.0))], NOW)
    await store.link_identity(cid("43"), CARD, NOW)
    with pytest.raises(FailedPrecondition, match="merging is not supported yet"):
        await store.link_identity(cid("42"), CARD, NOW)
    with pytest.raises(FailedPrecondition):
        await store.link_identity(cid("42"), cid("43"), NOW)
    profile = await store.get_profile(CARD, NOW)
    assert profile is not None and profile.customer_id == "43"


async def test_linking_from_an_unknown_identifier_is_not_found(store: ProfileStore) -> None:
    with pytest.raises(NotFound):
        await store.link_identity(CARD, cid("42"), NOW)


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
    assert changed == Preferences(**{**full.__dict__, "language": "en-GB"})
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


async def test_every_key_shares_one_slot_and_has_a_ttl(
    store: ProfileStore, client: aioredis.Redis, config: ProfileConfig
) -> None:
    await store.record_events([purchase("e1", CARD, NOW, ("gouda", "cheese", 1.0))], NOW)
    profile = await store.get_profile(CARD, NOW)
    assert profile is not None
    await store.link_identity(CARD, cid("c-1"), NOW)
    await store.update_preferences(CARD, Preferences(language="de"), ["language"], NOW)
    await store.update_consent(
        CARD,
        [ConsentChange(Purpose.SERVICE, Channel.SMS, ConsentStatus.GRANTED, NOW, "pos")],
        NOW,
    )
    keys = await all_keys(client)
    customer = [key for key in keys if profile.customer_id in key and ":id:" not in key]
    assert len(customer) >= 8
    assert {key_slot(key.encode()) for key in customer} == {
        key_slot(f"emma:c:{profile.customer_id}".encode())
    }
    for key in keys:
        ttl = await client.ttl(key)
        assert 0 < ttl <= config.ttl_s, key


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
    assert raw["{emma:c:42}:seen"] == ["e1"]
    assert raw["emma:id:loyalty_card:card-4711"] == "42"
    assert raw["emma:id:customer_id:42"] == "42"
    assert "gouda" in raw["{emma:c:42}:prod"]
    assert await store.export_customer(cid("nobody"), NOW) is None


async def test_erase_removes_every_key_and_is_idempotent(
    store: ProfileStore, client: aioredis.Redis
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
    result = await store.erase_customer(CARD)
    assert (result.erased, result.identifiers_removed) == (True, 2)
    remaining = await all_keys(client)
    assert remaining == sorted(other_keys)
    assert not [key for key in remaining if "42" in key or "card-4711" in key]
    assert await store.get_profile(cid("42"), NOW) is None
    again = await store.erase_customer(cid("42"))
    assert (again.erased, again.identifiers_removed) == (False, 0)
    assert (await store.erase_customer(CARD)).erased is False


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
