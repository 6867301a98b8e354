"""Tells the profile service about the simulated customers, through its public RPCs.

What each customer reveals: purchases (which become category affinities), past campaign
responses per channel (channel responsiveness), consent, and stated likes and dislikes.
Their hidden tastes never leave the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import grpc
from google.protobuf import field_mask_pb2

from emma.common import sdk as names
from emma.common.sdk import customer_ref, timestamp
from emma.common.v1 import common_pb2
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma.simulation.population import MARKETING_CHANNELS, PAST_CAMPAIGN, Customer

if TYPE_CHECKING:
    from emma.profile.v1.profile_pb2_grpc import ProfileServiceAsyncStub

CALL_TIMEOUT_S = 10.0
# Purchases and contacts happened over this many days before the simulation started.
HISTORY_DAYS = 60


def _events(customer: Customer, now: datetime) -> list[profile_pb2.Event]:
    ref = customer_ref(customer.ref)
    events = []
    step = timedelta(days=HISTORY_DAYS) / max(1, len(customer.purchases))
    for index, categories in enumerate(customer.purchases):
        event = profile_pb2.Event(
            event_id=f"{customer.customer_id}-purchase-{index}",
            customer=ref,
            time=timestamp(now - step * (index + 1)),
        )
        event.purchase.store_id = customer.home_store
        event.purchase.currency = "EUR"
        for line, category in enumerate(categories):
            event.purchase.items.add(
                product_id=f"{category}-{line}", category=category, quantity=1, amount=4.99
            )
        events.append(event)
    step = timedelta(days=HISTORY_DAYS) / max(1, len(customer.contacts))
    for index, (channel, clicked) in enumerate(customer.contacts):
        kinds = [profile_pb2.OFFER_RESPONSE_KIND_SHOWN]
        if clicked:
            kinds.append(profile_pb2.OFFER_RESPONSE_KIND_CLICKED)
        for kind in kinds:
            event = profile_pb2.Event(
                event_id=f"{customer.customer_id}-contact-{index}-{kind}",
                customer=ref,
                time=timestamp(now - step * (index + 1)),
            )
            event.offer_response.kind = kind
            event.offer_response.offer_id = PAST_CAMPAIGN
            event.offer_response.channel = names.channel(channel)
            events.append(event)
    return events


def _consent(customer: Customer, now: datetime) -> profile_pb2.UpdateConsentRequest:
    granted, denied = profile_pb2.CONSENT_STATUS_GRANTED, profile_pb2.CONSENT_STATUS_DENIED
    changes = [
        profile_pb2.ConsentChange(
            purpose=profile_pb2.PURPOSE_PERSONALISATION,
            channel=common_pb2.CHANNEL_UNSPECIFIED,
            status=granted if customer.personalised else denied,
            time=timestamp(now),
            source="simulation",
        )
    ]
    changes.extend(
        profile_pb2.ConsentChange(
            purpose=profile_pb2.PURPOSE_MARKETING,
            channel=names.channel(channel),
            status=granted if channel in customer.marketing else denied,
            time=timestamp(now),
            source="simulation",
        )
        for channel in MARKETING_CHANNELS
    )
    return profile_pb2.UpdateConsentRequest(customer=customer_ref(customer.ref), changes=changes)


def _preferences(customer: Customer) -> profile_pb2.UpdatePreferencesRequest:
    return profile_pb2.UpdatePreferencesRequest(
        customer=customer_ref(customer.ref),
        preferences=profile_pb2.Preferences(
            liked_categories=customer.liked, disliked_categories=customer.disliked
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["liked_categories", "disliked_categories"]),
    )


async def load_customer(stub: ProfileServiceAsyncStub, customer: Customer, now: datetime) -> None:
    """Events first (they create the profile), then consent and preferences."""
    events = profile_pb2.RecordEventsRequest(events=_events(customer, now))
    await stub.RecordEvents(events, timeout=CALL_TIMEOUT_S, wait_for_ready=True)
    await stub.UpdateConsent(_consent(customer, now), timeout=CALL_TIMEOUT_S, wait_for_ready=True)
    await stub.UpdatePreferences(
        _preferences(customer), timeout=CALL_TIMEOUT_S, wait_for_ready=True
    )


async def load_population(
    profile_address: str, customers: Sequence[Customer], now: datetime, concurrency: int = 16
) -> None:
    """Loads every customer; loading twice changes nothing (fixed event ids, same values)."""
    gate = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(profile_address) as channel:
        stub: ProfileServiceAsyncStub = profile_pb2_grpc.ProfileServiceStub(channel)

        async def one(customer: Customer) -> None:
            async with gate:
                await load_customer(stub, customer, now)

        await asyncio.gather(*(one(customer) for customer in customers))
