"""Linking and merging on a single Redis and on a 3-master cluster, including broken-off merges."""

from __future__ import annotations

import asyncio

import pytest

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
from emma.profile.record import Record
from emma.profile.store import ProfileStore
from emma.runtime.errors import NotFound
from emma.runtime.redis_client import RedisClient
from tests.profile.builders import card, cid, event, offer, purchase
from tests.profile.conftest import CARD, DAY, FIXED_POINT, NOW, all_keys, decayed

APP = CustomerRef(IdentifierKind.APP_USER_ID, "app-1")


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


async def test_linking_from_an_unknown_identifier_is_not_found(store: ProfileStore) -> None:
    with pytest.raises(NotFound):
        await store.link_identity(CARD, cid("42"), NOW)


async def test_a_new_customer_id_may_be_linked_by_reference(store: ProfileStore) -> None:
    """A CRM id without a profile becomes another name of the profile it is linked to."""
    await store.record_events([purchase("e1", CARD, NOW, ("gouda", "cheese", 1.0))], NOW)
    result = await store.link_identity(CARD, cid("crm-9"), NOW)
    assert result == type(result)(home_id(CARD))
    profile = await store.get_profile(cid("crm-9"), NOW)
    assert profile is not None and profile.customer_id == home_id(CARD)


async def _two_profiles(store: ProfileStore, config: ProfileConfig) -> None:
    """Customer 42 (older) and the card's own profile, each with a bit of everything."""
    older, newer = NOW - 2 * DAY, NOW - DAY
    await store.record_events(
        [
            purchase("a1", cid("42"), NOW - 3 * DAY, ("emmentaler", "cheese", 5.0)),
            offer("a2", cid("42"), NOW - 3 * DAY, OfferResponseKind.SHOWN, "coffee"),
            event("a3", cid("42"), NOW - 3 * DAY, SupportContact(0.8, "thanks", Channel.EMAIL)),
            event("a4", cid("42"), older, LifeEvent(LifeEventKind.MOVED, older, "koeln-dom")),
        ],
        older,
    )
    await store.record_events(
        [
            purchase("b1", CARD, NOW - DAY, ("riesling", "wine", 8.0), ("gouda", "cheese", 4.0)),
            offer("b2", CARD, NOW - DAY, OfferResponseKind.DISMISSED, "coffee"),
            offer("b3", CARD, NOW - DAY, OfferResponseKind.CLICKED, "coffee"),
            event("b4", CARD, NOW - DAY, SupportContact(-0.4, "late", Channel.EMAIL)),
            event("b5", CARD, newer, LifeEvent(LifeEventKind.MOVED, newer, "berlin-mitte")),
        ],
        newer,
    )
    grant = ConsentChange(Purpose.MARKETING, Channel.EMAIL, ConsentStatus.GRANTED, older, "web")
    withdraw = ConsentChange(
        Purpose.MARKETING, Channel.UNSPECIFIED, ConsentStatus.WITHDRAWN, newer, "pos"
    )
    await store.update_consent(cid("42"), [grant], older)
    await store.update_consent(CARD, [withdraw], newer)
    await store.update_preferences(
        cid("42"),
        Preferences(liked_products=("emmentaler",), disliked_products=("gouda",), language="de"),
        ["liked_products", "disliked_products", "language"],
        older,
    )
    await store.update_preferences(
        CARD,
        Preferences(
            liked_products=("gouda", "brezel"),
            language="en",
            quiet_hours=QuietHours(1320, 420, True),
        ),
        ["liked_products", "language", "quiet_hours"],
        newer,
    )


async def test_linking_identifiers_of_two_profiles_merges_them(
    store: ProfileStore, any_config: ProfileConfig, client: RedisClient
) -> None:
    await _two_profiles(store, any_config)
    result = await store.link_identity(cid("42"), CARD, NOW)
    # The older profile survives; the card's profile is merged into it.
    assert (result.customer_id, result.merged, result.merged_customer_id) == (
        "42",
        True,
        home_id(CARD),
    )
    profile = await store.get_profile(CARD, NOW)
    assert profile is not None and profile.customer_id == "42"
    assert set(profile.identifiers) == {cid("42"), CARD}
    assert profile.created_at == NOW - 2 * DAY
    assert (profile.rfm.purchase_count, profile.rfm.last_purchase_at) == (2, NOW - DAY)
    assert profile.rfm.total_spend == pytest.approx(17.0)
    hl = any_config.half_life_s
    cheese = decayed([NOW - 3 * DAY, NOW - DAY], NOW, hl)
    assert {a.key: a.score for a in profile.category_affinities} == pytest.approx(
        {"cheese": cheese, "wine": decayed([NOW - DAY], NOW, hl)}, abs=2 * FIXED_POINT
    )
    assert sum(profile.active_hours) == pytest.approx(
        decayed([NOW - 3 * DAY] * 3 + [NOW - 2 * DAY] + [NOW - DAY] * 5, NOW, hl),
        abs=10 * FIXED_POINT,
    )
    weights = decayed([NOW - 3 * DAY], NOW, hl), decayed([NOW - DAY], NOW, hl)
    expected_sentiment = (0.8 * weights[0] - 0.4 * weights[1]) / sum(weights)
    assert profile.sentiment == pytest.approx(expected_sentiment, abs=0.01)
    [push] = profile.channels
    assert push.channel == Channel.PUSH
    assert (push.impressions, push.responses) == pytest.approx(weights, abs=2 * FIXED_POINT)
    [coffee] = profile.offer_history
    assert (coffee.last_shown, coffee.last_clicked, coffee.last_dismissed) == (
        NOW - 3 * DAY,
        NOW - DAY,
        NOW - DAY,
    )
    # Both moves are remembered; the later one names the home store.
    assert [e.store_id for e in profile.recent_life_events] == ["berlin-mitte", "koeln-dom"]
    assert profile.home_store_id == "berlin-mitte"
    # Consent: the ledgers merged by time, so the later withdrawal wins everywhere.
    assert {(c.channel, c.status) for c in profile.consents} == {
        (Channel.UNSPECIFIED, ConsentStatus.WITHDRAWN),
        (Channel.EMAIL, ConsentStatus.WITHDRAWN),
    }
    export = await store.export_customer(cid("42"), NOW)
    assert export is not None and [c.source for c in export.consent_ledger] == ["web", "pos"]
    # Preferences: the union, the survivor winning where they disagree.
    prefs = profile.preferences
    assert (prefs.liked_products, prefs.disliked_products) == (("emmentaler", "brezel"), ("gouda",))
    assert (prefs.language, prefs.quiet_hours) == ("de", QuietHours(1320, 420, True))
    record = Record.parse(await client.hgetall("{emma:c:42}"))
    assert record.scalars["Q"] == record.family_counts() == "p3c2o1"
    # The loser's keys are gone but for the redirect its identifier's home now holds.
    loser_keys = [key for key in await all_keys(client) if home_id(CARD) in key]
    assert loser_keys == ["{emma:c:" + home_id(CARD) + "}"]
    assert await client.hgetall(loser_keys[0]) == {"X": "42"}


async def test_event_ids_of_both_profiles_stay_known_after_a_merge(store: ProfileStore) -> None:
    first = purchase("x1", CARD, NOW, ("gouda", "cheese", 1.0))
    second = purchase("x2", cid("42"), NOW, ("gouda", "cheese", 1.0))
    await store.record_events([first], NOW)
    await store.record_events([second], NOW)
    await store.link_identity(cid("42"), CARD, NOW)
    replay = await store.record_events([first, second], NOW)
    assert (replay.accepted, replay.duplicates) == (0, 2)
    new = await store.record_events([purchase("x3", CARD, NOW, ("gouda", "cheese", 1.0))], NOW)
    assert new.accepted == 1
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None and profile.rfm.purchase_count == 3


async def test_the_older_profile_survives_whichever_side_links(store: ProfileStore) -> None:
    await store.record_events([purchase("a", CARD, NOW, ("x", "y", 1.0))], NOW - DAY)
    await store.record_events([purchase("b", cid("42"), NOW, ("x", "y", 1.0))], NOW)
    result = await store.link_identity(cid("42"), CARD, NOW)
    assert (result.customer_id, result.merged_customer_id) == (home_id(CARD), "42")
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None and profile.customer_id == home_id(CARD)


async def test_linking_two_customer_ids_merges_and_keeps_both_names(store: ProfileStore) -> None:
    await store.record_events([purchase("a", cid("42"), NOW, ("x", "y", 1.0))], NOW)
    await store.record_events([purchase("b", cid("43"), NOW, ("x", "y", 1.0))], NOW)
    await store.link_identity(cid("43"), APP, NOW)
    result = await store.link_identity(cid("42"), cid("43"), NOW)
    assert (result.customer_id, result.merged, result.merged_customer_id) == ("42", True, "43")
    for ref in (cid("42"), cid("43"), APP):
        profile = await store.get_profile(ref, NOW)
        assert profile is not None and profile.customer_id == "42", ref
        assert profile.rfm.purchase_count == 2
        assert set(profile.identifiers) == {cid("42"), cid("43"), APP}


async def test_a_merge_broken_off_after_marking_is_completed_by_the_next_reader(
    store: ProfileStore,
) -> None:
    await store.record_events([purchase("a", cid("42"), NOW, ("x", "y", 1.0))], NOW - DAY)
    await store.record_events([purchase("b", CARD, NOW, ("x", "y", 1.0))], NOW)
    await store.link_identity(CARD, APP, NOW)
    loser = home_id(CARD)
    # Step 1 only, as if the process died right after it.
    keys = store.identities.keys(loser, NOW).script_keys()
    await store.identities.runner.call("snapshot", keys, ["mark", "42", str(int(NOW.timestamp()))])
    # A reader of the frozen profile completes the merge and sees the result.
    profile = await store.get_profile(APP, NOW)
    assert profile is not None and profile.customer_id == "42"
    assert profile.rfm.purchase_count == 2
    for ref in (CARD, APP, cid(loser)):
        again = await store.get_profile(ref, NOW)
        assert again is not None and again.customer_id == "42"


async def test_a_merge_broken_off_after_absorbing_is_completed_by_the_next_writer(
    store: ProfileStore,
) -> None:
    await store.record_events([purchase("a", cid("42"), NOW, ("x", "y", 1.0))], NOW - DAY)
    await store.record_events([purchase("b", CARD, NOW, ("x", "y", 1.0))], NOW)
    loser = home_id(CARD)
    ids = store.identities
    keys = ids.keys(loser, NOW).script_keys()
    started = str(int(NOW.timestamp()))
    reply = await ids.runner.call("snapshot", keys, ["mark", "42", started])
    snapshot = ids._snapshot(loser, reply, ids.window(NOW))
    assert await ids._absorb("42", snapshot, float(started), NOW) == "42"  # steps 1 and 2 only
    # A replay of the loser's event and a new one, both by the loser's identifier.
    result = await store.record_events(
        [purchase("b", CARD, NOW, ("x", "y", 1.0)), purchase("c", CARD, NOW, ("x", "y", 1.0))],
        NOW,
    )
    assert (result.accepted, result.duplicates) == (1, 1)
    profile = await store.get_profile(cid("42"), NOW)
    assert profile is not None and profile.rfm.purchase_count == 3
    # Completing it once more changes nothing.
    assert await ids.complete_merge(loser, NOW) == "42"
    again = await store.get_profile(CARD, NOW)
    assert again == profile


async def test_concurrent_links_end_in_one_profile_and_lose_nothing(store: ProfileStore) -> None:
    refs = [cid("a"), card("b"), CustomerRef(IdentifierKind.DEVICE_ID, "c"), cid("d")]
    for index, ref in enumerate(refs):
        await store.record_events([purchase(f"e{index}", ref, NOW, ("x", "y", 1.0))], NOW)
    pairs = [(refs[0], refs[1]), (refs[1], refs[2]), (refs[2], refs[3]), (refs[3], refs[0])]
    writes = [
        store.record_events([purchase(f"w{i}", refs[i % 4], NOW, ("x", "y", 1.0))], NOW)
        for i in range(8)
    ]
    await asyncio.gather(*(store.link_identity(a, b, NOW) for a, b in pairs), *writes)
    profiles = [await store.get_profile(ref, NOW) for ref in refs]
    assert len({p.customer_id for p in profiles if p is not None}) == 1
    survivor = profiles[0]
    assert survivor is not None
    assert survivor.rfm.purchase_count == 12
    assert set(survivor.identifiers) == set(refs)
