"""The offer wallet across touchpoints: an app coupon delivered, reminded at the till,
redeemed there, closed everywhere, and its decision rewarded."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2
from emma.profile.v1 import profile_pb2
from tests.triggers.conftest import Moments, customer, event


def decide(ref: common_pb2.CustomerRef, touchpoint: int, **fields: object):
    request = decision_pb2.DecideRequest(customer=ref, touchpoint=touchpoint, **fields)  # type: ignore[arg-type]
    request.request_time.FromDatetime(datetime.now(UTC))
    return request


def response(ref, kind: int, offer: str, decision: str, **fields: object):
    return event(
        ref,
        datetime.now(UTC),
        offer_response=profile_pb2.OfferResponse(
            kind=kind,  # type: ignore[arg-type]
            offer_id=offer,
            decision_event_id=decision,
            channel=common_pb2.CHANNEL_PUSH,
            **fields,  # type: ignore[arg-type]
        ),
    )


async def wallet(moments: Moments, ref: common_pb2.CustomerRef) -> list[tuple[str, str]]:
    got = await moments.profile.GetProfile(profile_pb2.GetProfileRequest(customer=ref))
    return [(w.offer_id, w.event_id) for w in got.profile.wallet]


async def deliver_app_coupon(
    moments: Moments, anna: common_pb2.CustomerRef
) -> tuple[str, str, profile_pb2.Event]:
    """Decides a push for the app now and records its delivery: offer, event id, delivery."""
    moments.at(datetime.now(UTC))
    app = await moments.decision.Decide(
        decide(anna, common_pb2.TOUCHPOINT_APP, allowed_channels=[common_pb2.CHANNEL_PUSH])
    )
    offer, decision = app.offer.offer_id, app.event_id
    delivered = response(anna, profile_pb2.OFFER_RESPONSE_KIND_SHOWN, offer, decision)
    delivered.offer_response.expires_at.FromDatetime(datetime.now(UTC) + timedelta(days=7))
    await moments.record(delivered)
    return offer, decision, delivered


async def test_an_app_coupon_is_reminded_and_redeemed_at_the_till(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    offer, decision, delivered = await deliver_app_coupon(moments, anna)
    assert await wallet(moments, anna) == [(offer, decision)]

    # The till is reminded of the coupon and does not offer it again.
    till = await moments.decision.Decide(decide(anna, common_pb2.TOUCHPOINT_POS))
    assert [(o.offer_id, o.event_id) for o in till.open_offers] == [(offer, decision)]
    assert till.open_offers[0].title
    assert till.offer.offer_id != offer
    assert any(r.code == "filtered.wallet" for r in till.reasons)

    # Redeemed at the till: closed everywhere, and the app decision is rewarded once.
    redeemed = response(anna, profile_pb2.OFFER_RESPONSE_KIND_REDEEMED, offer, decision)
    await moments.record(redeemed)
    assert await wallet(moments, anna) == []
    again = await moments.decision.Decide(decide(anna, common_pb2.TOUCHPOINT_POS))
    assert list(again.open_offers) == []
    await moments.record(redeemed, delivered)  # a replay neither reopens nor rewards twice
    await moments.step()
    assert await wallet(moments, anna) == []
    rewards = [
        json.loads(fields[b"json"])
        for _, fields in await moments.redis.xrange("emma:rewards")
        if fields[b"type"] == b"reward"
    ]
    assert [(r["EventId"], r["kind"], r["v"]) for r in rewards] == [(decision, "redeem", 1.0)]


async def test_wallet_entries_expire_and_are_erased_with_the_customer(moments: Moments) -> None:
    anna = customer()
    lapsed = response(anna, profile_pb2.OFFER_RESPONSE_KIND_SHOWN, "cheese-look", "d-old")
    lapsed.offer_response.expires_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    fresh = response(anna, profile_pb2.OFFER_RESPONSE_KIND_SHOWN, "coffee-reminder", "d-new")
    await moments.record(lapsed, fresh)
    assert await wallet(moments, anna) == [("coffee-reminder", "d-new")]
    export = await moments.profile.ExportCustomer(profile_pb2.ExportCustomerRequest(customer=anna))
    assert any(key.endswith(":w") for key in json.loads(export.raw_json))
    await moments.profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=anna))
    assert [key async for key in moments.redis.scan_iter("*:w")] == []


async def test_a_wallet_follows_a_linked_identifier(moments: Moments) -> None:
    anna, card = (
        customer(),
        common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_LOYALTY_CARD, value="4711"),
    )
    await moments.record(response(anna, profile_pb2.OFFER_RESPONSE_KIND_SHOWN, "x", "d-1"))
    await moments.profile.LinkIdentity(
        profile_pb2.LinkIdentityRequest(customer=anna, identifier=card)
    )
    assert await wallet(moments, card) == [("x", "d-1")]
    await moments.record(response(card, profile_pb2.OFFER_RESPONSE_KIND_REDEEMED, "x", "d-1"))
    assert await wallet(moments, anna) == []


async def test_an_app_coupon_is_honoured_at_the_till_after_the_identities_are_linked(
    moments: Moments,
) -> None:
    anna = customer()
    till_card = common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_LOYALTY_CARD, value="4711")
    # The card shopped first (its profile is the older one and survives a merge); the app
    # account came later, in another second.
    await moments.record(
        event(
            till_card,
            datetime.now(UTC),
            purchase=profile_pb2.Purchase(
                items=[common_pb2.BasketItem(product_id="brezel", category="bakery", amount=1)],
                currency="EUR",
            ),
        )
    )
    await asyncio.sleep(1.05 - time.time() % 1)
    await moments.consent(anna)
    offer, decision, _ = await deliver_app_coupon(moments, anna)
    app_profile = await moments.profile.GetProfile(profile_pb2.GetProfileRequest(customer=anna))

    linked = await moments.profile.LinkIdentity(
        profile_pb2.LinkIdentityRequest(customer=till_card, identifier=anna)
    )
    assert linked.merged and linked.merged_customer_id == app_profile.profile.customer_id

    # The till knows the card only: the coupon moved with the app's profile.
    assert await wallet(moments, till_card) == [(offer, decision)]
    till = await moments.decision.Decide(decide(till_card, common_pb2.TOUCHPOINT_POS))
    assert [(o.offer_id, o.event_id) for o in till.open_offers] == [(offer, decision)]
    assert till.offer.offer_id != offer
    await moments.record(
        response(till_card, profile_pb2.OFFER_RESPONSE_KIND_REDEEMED, offer, decision)
    )
    assert await wallet(moments, till_card) == [] and await wallet(moments, anna) == []
    await moments.step()
    rewards = [
        json.loads(fields[b"json"])
        for _, fields in await moments.redis.xrange("emma:rewards")
        if fields[b"type"] == b"reward"
    ]
    assert [(r["EventId"], r["kind"]) for r in rewards] == [(decision, "redeem")]
    assert [key async for key in moments.redis.scan_iter("*:w")] == [
        f"{{emma:c:{linked.customer_id}}}:w".encode()
    ]
