"""The demo's moments: a geofence push, then a till reminded of the app coupon and redeeming it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import grpc
import redis

from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2, context_pb2_grpc
from emma.decision.v1 import decision_pb2, decision_pb2_grpc
from emma.profile.v1 import profile_pb2, profile_pb2_grpc

# Anna has consented to pushes (services/emma/demo/customers.yaml); the app knows her by
# her app user id, the till by her loyalty card.
APP_USER = common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_APP_USER_ID, value="app-anna")
LOYALTY_CARD = common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_LOYALTY_CARD, value="1001")
# A railway-station store, open around the clock, with an offer of its own
# (services/emma/demo/stores.yaml and catalog.yaml).
STORE_ID = "freiburg-hauptbahnhof"
OUTBOUND_STREAM = "emma:outbound"
PUSH_WAIT_S = 10.0
DEADLINE_S = 5.0


def _event(customer: common_pb2.CustomerRef, **payload: object) -> profile_pb2.Event:
    event = profile_pb2.Event(event_id=f"demo-{uuid.uuid4()}", customer=customer, **payload)  # type: ignore[arg-type]
    event.time.FromDatetime(datetime.now(UTC))
    return event


def _record(profile: profile_pb2_grpc.ProfileServiceStub, *events: profile_pb2.Event) -> None:
    profile.RecordEvents(profile_pb2.RecordEventsRequest(events=events), timeout=DEADLINE_S)


def _open_store(channel: grpc.Channel) -> context_pb2.Store | None:
    """The station store with its own push offer, if open now (pushes go only to open stores)."""
    context = context_pb2_grpc.ContextServiceStub(channel)
    store = context.GetStore(context_pb2.GetStoreRequest(store_id=STORE_ID), timeout=DEADLINE_S)
    resolved = context.Resolve(context_pb2.ResolveRequest(store_id=STORE_ID), timeout=DEADLINE_S)
    return store.store if resolved.context.store_open else None


def _wait_for_push(client: redis.Redis, after: str) -> dict[str, str] | None:
    deadline = time.monotonic() + PUSH_WAIT_S
    while time.monotonic() < deadline:
        entries: list[tuple[str, dict[str, str]]] = client.xrange(  # type: ignore[assignment]
            OUTBOUND_STREAM, min=f"({after}"
        )
        for _, fields in entries:
            if fields.get("rule") == "geofence-entry":
                return fields
        time.sleep(0.2)
    return None


def show_moments(
    profile_address: str, context_address: str, decision_address: str, redis_url: str
) -> bool:
    """Prints the moments part of the demo; False when no store is open to walk into."""
    with (
        grpc.insecure_channel(context_address) as context_channel,
        grpc.insecure_channel(profile_address) as profile_channel,
        grpc.insecure_channel(decision_address) as decision_channel,
        redis.Redis.from_url(redis_url, decode_responses=True) as client,
    ):
        store = _open_store(context_channel)
        if store is None:
            print(f"moments: {STORE_ID} is closed now; a geofence push goes only to open stores")
            return False
        profile = profile_pb2_grpc.ProfileServiceStub(profile_channel)
        last = (
            client.xinfo_stream(OUTBOUND_STREAM)["last-generated-id"]
            if client.exists(OUTBOUND_STREAM)
            else "0-0"
        )
        ping = profile_pb2.LocationPing(location=store.location, accuracy=10)
        _record(profile, _event(APP_USER, location=ping))
        push = _wait_for_push(client, last)
        if push is None:
            print(f"moments: anna walked into {store.store_id}, but no push was published")
            return False
        print(
            f"moments: anna's app reports her inside {store.store_id}'s geofence; the trigger"
            f" engine decided and published to {OUTBOUND_STREAM}:\n"
            f"  {push['channel']} {push['offer_id']!r} ({push['title']}), send at"
            f" {push['send_at']}, expires {push['expires_at']}, decision {push['event_id']}"
        )
        delivered = profile_pb2.OfferResponse(
            kind=profile_pb2.OFFER_RESPONSE_KIND_SHOWN,
            offer_id=push["offer_id"],
            decision_event_id=push["event_id"],
            channel=common_pb2.CHANNEL_PUSH,
        )
        delivered.expires_at.FromDatetime(datetime.fromisoformat(push["expires_at"]))
        _record(profile, _event(APP_USER, offer_response=delivered))
        wallet = profile.GetProfile(
            profile_pb2.GetProfileRequest(customer=LOYALTY_CARD), timeout=DEADLINE_S
        ).profile.wallet
        print(f"  delivered: anna's wallet holds {[w.offer_id for w in wallet]}")

        decision = decision_pb2_grpc.DecisionServiceStub(decision_channel)
        till = decision.Decide(
            decision_pb2.DecideRequest(
                customer=LOYALTY_CARD,
                touchpoint=common_pb2.TOUCHPOINT_POS,
                store_id=store.store_id,
                allowed_channels=[common_pb2.CHANNEL_CASHIER_PROMPT, common_pb2.CHANNEL_RECEIPT],
            ),
            timeout=DEADLINE_S,
        )
        reminded = [o.offer_id for o in till.open_offers]
        print(
            f"  at the till (loyalty card 1001): remind the cashier of {reminded};"
            f" new offer {till.offer.offer_id!r} instead of the same coupon again"
        )
        redeemed = profile_pb2.OfferResponse(
            kind=profile_pb2.OFFER_RESPONSE_KIND_REDEEMED,
            offer_id=push["offer_id"],
            decision_event_id=push["event_id"],
            channel=common_pb2.CHANNEL_CASHIER_PROMPT,
        )
        _record(profile, _event(LOYALTY_CARD, offer_response=redeemed))
        left = profile.GetProfile(
            profile_pb2.GetProfileRequest(customer=APP_USER), timeout=DEADLINE_S
        ).profile.wallet
        print(
            f"  redeemed at the till: the app's wallet now holds {[w.offer_id for w in left]};"
            f" the push decision {push['event_id']} gets the reward"
        )
        return True
