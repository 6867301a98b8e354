"""A merge moves the loser's offer wallet to the survivor, also when broken off and resumed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from emma.common.v1 import common_pb2
from emma.profile import intake
from emma.profile.keys import home_id
from emma.profile.model import CustomerRef, IdentifierKind
from emma.profile.store import ProfileStore
from emma.profile.v1 import profile_pb2 as pb
from emma.profile.wallet import REDEEMED, Entry, Wallet, wallet_key
from emma.runtime.errors import Aborted
from emma.runtime.redis_client import RedisClient
from tests.profile.builders import card, cid
from tests.profile.conftest import CARD, DAY, all_keys

SHOWN, REDEEM = pb.OFFER_RESPONSE_KIND_SHOWN, pb.OFFER_RESPONSE_KIND_REDEEMED
Canonical = Callable[[CustomerRef], Awaitable[str | None]]


def response(
    event_id: str,
    ref: CustomerRef,
    kind: int,
    decision: str,
    at: datetime,
    expires: datetime | None = None,
) -> pb.Event:
    message = pb.Event(
        event_id=event_id,
        customer=common_pb2.CustomerRef(kind=int(ref.kind), value=ref.value),  # type: ignore[arg-type]
        offer_response=pb.OfferResponse(
            kind=kind,  # type: ignore[arg-type]
            offer_id=f"offer-{decision}",
            decision_event_id=decision,
            channel=common_pb2.CHANNEL_PUSH,
        ),
    )
    message.time.FromDatetime(at)
    if expires is not None:
        message.offer_response.expires_at.FromDatetime(expires)
    return message


@pytest.fixture
def wallet(client: RedisClient) -> Wallet:
    return Wallet(client, "emma", timedelta(days=30))


def resolver(store: ProfileStore, now: datetime) -> Canonical:
    """What the servicer passes the wallet: the canonical id any reference resolves to."""

    async def canonical(ref: CustomerRef) -> str | None:
        profile = await store.get_profile(ref, now)
        return profile.customer_id if profile is not None else None

    return canonical


async def record(
    store: ProfileStore,
    wallet: Wallet,
    now: datetime,
    *events: pb.Event,
    canonical: Canonical | None = None,
) -> None:
    """As RecordEvents does it: the atomic profile writes, then the wallet."""
    await store.record_batch(intake.read_batch(events, now, 1000, "Europe/Berlin"), now)
    await wallet.apply(events, now, canonical or resolver(store, now))


async def held(wallet: Wallet, customer_id: str) -> dict[str, str]:
    """Decision event id -> state of every entry kept, open or not."""
    return {entry.event_id: entry.state for entry in await wallet.entries(customer_id)}


async def open_ids(wallet: Wallet, customer_id: str, now: datetime) -> list[str]:
    return [offer.event_id for offer in await wallet.open_offers(customer_id, now)]


async def wallets(client: RedisClient) -> list[str]:
    return [key for key in await all_keys(client) if key.endswith(":w")]


async def two_profiles(store: ProfileStore, wallet: Wallet, now: datetime) -> str:
    """42 (the older profile, the survivor) with an offer of its own; the card's profile with
    an app coupon. Returns the card's customer id (the loser)."""
    week = now + timedelta(days=7)
    await record(
        store, wallet, now - timedelta(days=1), response("s1", cid("42"), SHOWN, "d-own", now, week)
    )
    await record(store, wallet, now, response("c1", CARD, SHOWN, "d-app", now, week))
    return home_id(CARD)


async def test_a_merge_moves_the_losers_coupon_and_the_till_honours_it(
    store: ProfileStore, wallet: Wallet, client: RedisClient
) -> None:
    now = datetime.now(UTC)
    loser = await two_profiles(store, wallet, now)
    result = await store.link_identity(cid("42"), CARD, now)
    assert (result.customer_id, result.merged_customer_id) == ("42", loser)
    assert await open_ids(wallet, "42", now) == ["d-app", "d-own"]
    assert await wallets(client) == [wallet_key("emma", "42")]  # the loser's went with it
    # At the till the card names the coupon: it resolves to the survivor and closes there.
    profile, raw = await store.get_profile_and_wallet(CARD, now)
    assert profile is not None and sorted(raw) == ["d-app", "d-own"]
    await record(store, wallet, now, response("till-1", CARD, REDEEM, "d-app", now))
    assert await open_ids(wallet, "42", now) == ["d-own"]
    assert (await held(wallet, "42"))["d-app"] == REDEEMED


async def test_redeemed_stays_redeemed_and_lapsed_offers_are_not_revived(
    store: ProfileStore, wallet: Wallet, client: RedisClient
) -> None:
    now = datetime.now(UTC)
    week, before = now + timedelta(days=7), now - timedelta(days=2)
    app = CustomerRef(IdentifierKind.APP_USER_ID, "anna")
    await record(store, wallet, before, response("s0", cid("42"), SHOWN, "d-mine", before, week))
    await record(
        store,
        wallet,
        before,
        response("a1", app, SHOWN, "d-open", before, week),
        response("a2", app, SHOWN, "d-used", before, week),
        response("a3", app, REDEEM, "d-used", before),
        # Lapsed a minute ago: kept a grace period (a late delivery must not reopen it).
        response("a4", app, SHOWN, "d-lapsed", before, now - timedelta(minutes=1)),
        # Lapsed eight days ago: past its grace by now, only not pruned yet (no write since).
        response("a5", app, SHOWN, "d-gone", before, now - timedelta(days=8)),
        # Delivered in the app; redeemed at the till under the other identity (below).
        response("a6", app, SHOWN, "d-till", before, week),
        # Delivered under 42, redeemed under the app identity.
        response("a7", app, REDEEM, "d-mine", before),
    )
    await record(store, wallet, before, response("s1", cid("42"), REDEEM, "d-till", before))
    loser = home_id(app)
    assert set(await held(wallet, loser)) == {
        "d-open", "d-used", "d-lapsed", "d-gone", "d-till", "d-mine"
    }  # fmt: skip

    result = await store.link_identity(cid("42"), app, now)
    assert (result.customer_id, result.merged_customer_id) == ("42", loser)
    assert await held(wallet, "42") == {
        "d-open": "o",
        "d-used": "r",
        "d-lapsed": "o",  # kept, expired: not open
        "d-till": "r",
        "d-mine": "r",
    }
    assert await open_ids(wallet, "42", now) == ["d-open"]
    entries = {entry.event_id: entry for entry in await wallet.entries("42")}
    # The coupon redeemed at the till took in what the app's delivery knew: the same entry as
    # if both had been recorded under one customer.
    till = entries["d-till"]
    assert (till.delivered, till.expires) == (int(before.timestamp()), int(week.timestamp()))
    assert till.closed == int(before.timestamp())
    # The wallet lives until the last entry's grace ends, not longer.
    ttl = await client.ttl(wallet_key("emma", "42"))
    assert 0 < ttl <= (week + timedelta(days=7) - now).total_seconds() + 2
    assert await wallets(client) == [wallet_key("emma", "42")]


async def test_a_wallet_write_that_meets_a_frozen_profile_follows_the_merge(
    store: ProfileStore, wallet: Wallet, client: RedisClient
) -> None:
    now = datetime.now(UTC)
    loser = await two_profiles(store, wallet, now)
    # A delivery resolved its customer just before a merge froze the card's profile (step 1
    # only, as if the linking process died right after it).
    stale = resolver(store, now)
    resolved: list[str | None] = [await stale(CARD)]

    async def resolved_before_the_freeze(ref: CustomerRef) -> str | None:
        return resolved.pop() if resolved else await stale(ref)

    keys = store.identities.keys(loser, now).script_keys()
    await store.identities.runner.call("snapshot", keys, ["mark", "42", str(int(now.timestamp()))])
    late = response("c2", CARD, SHOWN, "d-late", now, now + timedelta(days=7))
    await wallet.apply([late], now, resolved_before_the_freeze)
    # The write completed the merge and went where the card's wallet went.
    assert await open_ids(wallet, "42", now) == ["d-app", "d-late", "d-own"]
    assert await wallets(client) == [wallet_key("emma", "42")]
    profile = await store.get_profile(CARD, now)
    assert profile is not None and profile.customer_id == "42"


async def test_a_merge_broken_off_after_absorbing_moved_the_wallet_once(
    store: ProfileStore, wallet: Wallet, client: RedisClient
) -> None:
    now = datetime.now(UTC)
    loser = await two_profiles(store, wallet, now)
    ids = store.identities
    keys = ids.keys(loser, now).script_keys()
    started = str(int(now.timestamp()))
    reply = await ids.runner.call("snapshot", keys, ["mark", "42", started])
    snapshot = ids._snapshot(loser, reply, ids.window(now))
    assert snapshot.stored.wallet.keys() == {"d-app"}
    assert await ids._absorb("42", snapshot, float(started), now) == "42"  # steps 1 and 2
    # The survivor holds the coupon already, and it is redeemed there before the merge ends.
    assert await open_ids(wallet, "42", now) == ["d-app", "d-own"]
    await record(store, wallet, now, response("till-1", cid("42"), REDEEM, "d-app", now))
    assert await wallets(client) == sorted([wallet_key("emma", "42"), wallet_key("emma", loser)])
    # Completing the merge (twice) neither reopens the coupon nor leaves the loser's wallet.
    for _ in range(2):
        assert await ids.complete_merge(loser, now) == "42"
        assert await held(wallet, "42") == {"d-app": "r", "d-own": "o"}
        assert await wallets(client) == [wallet_key("emma", "42")]


async def test_a_merge_given_up_leaves_the_wallet_with_its_profile(
    store: ProfileStore, wallet: Wallet, client: RedisClient
) -> None:
    now = datetime.now(UTC)
    loser = await two_profiles(store, wallet, now)
    ids = store.identities
    keys = ids.keys(loser, now).script_keys()
    await ids.runner.call("snapshot", keys, ["mark", "42", str(int(now.timestamp()))])
    # The survivor is erased before the merge completes: the card's profile is unfrozen and
    # keeps its coupon; nothing is written to the erased profile's wallet.
    await store.erase_customer(cid("42"), now)
    with pytest.raises(Aborted):
        await ids.complete_merge(loser, now)
    await record(store, wallet, now, response("c2", CARD, SHOWN, "d-next", now, now + DAY))
    assert sorted(await open_ids(wallet, loser, now)) == ["d-app", "d-next"]
    assert await wallets(client) == [wallet_key("emma", loser)]


async def test_concurrent_links_and_deliveries_lose_no_offer(
    store: ProfileStore, wallet: Wallet, client: RedisClient
) -> None:
    now = datetime.now(UTC)
    week = now + timedelta(days=7)
    refs = [cid("a"), card("b"), cid("c"), card("d")]
    for index, ref in enumerate(refs):
        await record(store, wallet, now, response(f"e{index}", ref, SHOWN, f"d{index}", now, week))
    pairs = [(refs[0], refs[1]), (refs[1], refs[2]), (refs[2], refs[3]), (refs[3], refs[0])]
    deliveries = [
        record(store, wallet, now, response(f"w{i}", refs[i % 4], SHOWN, f"late{i}", now, week))
        for i in range(8)
    ]
    await asyncio.gather(*(store.link_identity(a, b, now) for a, b in pairs), *deliveries)
    profiles = [await store.get_profile(ref, now) for ref in refs]
    assert len({p.customer_id for p in profiles if p is not None}) == 1
    survivor = profiles[0]
    assert survivor is not None
    expected = sorted([f"d{i}" for i in range(4)] + [f"late{i}" for i in range(8)])
    assert sorted(await open_ids(wallet, survivor.customer_id, now)) == expected
    assert await wallets(client) == [wallet_key("emma", survivor.customer_id)]


def test_an_entry_becomes_the_ops_that_recreate_it() -> None:
    entry = Entry("d", "r", "coupon", 1, 100.0, 200.0, 150.0)
    assert entry.ops() == [
        ["open", "d", "coupon", 1, 100, 200],
        ["redeem", "d", "coupon", 1, 150, 150],
    ]
    # Redeemed before any delivery was seen: only the redemption.
    assert Entry("d", "r", "coupon", 1, 0, 0, 150.0).ops() == [
        ["redeem", "d", "coupon", 1, 150, 150]
    ]
