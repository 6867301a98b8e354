"""Builds the profile service's requests a till or an app sends: redemptions and purchases."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from emma_client import names
from emma_client.protos.emma.common.v1 import common_pb2
from emma_client.protos.emma.profile.v1 import profile_pb2
from emma_client.requests import BasketLine, CustomerLike, basket, customer_ref, timestamp


class HeldOffer(Protocol):
    """An offer the customer holds: an `OpenOffer` of a decision or a `WalletOffer`."""

    @property
    def offer_id(self) -> str: ...

    @property
    def event_id(self) -> str: ...


def _event(
    customer: CustomerLike, time: datetime | None, event_id: str | None
) -> profile_pb2.Event:
    # A fresh id per call, sent unchanged by gRPC's retries, so a retried call counts once.
    event = profile_pb2.Event(
        event_id=uuid.uuid4().hex if event_id is None else event_id,
        customer=customer_ref(customer),
    )
    if not event.event_id:
        raise ValueError("event_id must not be empty")
    if time is not None:
        event.time.CopyFrom(timestamp(time))
    return event


def redeem_request(
    customer: CustomerLike,
    offer: HeldOffer,
    channel: str | int,
    time: datetime | None = None,
    event_id: str | None = None,
) -> profile_pb2.RecordEventsRequest:
    """An offer response REDEEMED: closes the wallet entry and rewards the offer's decision."""
    if not offer.offer_id or not offer.event_id:
        raise ValueError("offer must have an offer_id and the event_id of its decision")
    event = _event(customer, time, event_id)
    event.offer_response.CopyFrom(
        profile_pb2.OfferResponse(
            kind=profile_pb2.OFFER_RESPONSE_KIND_REDEEMED,
            offer_id=offer.offer_id,
            decision_event_id=offer.event_id,
            channel=names.channel(channel),
        )
    )
    return profile_pb2.RecordEventsRequest(events=[event])


def purchase_request(
    customer: CustomerLike,
    lines: Iterable[BasketLine],
    *,
    store_id: str = "",
    currency: str = "EUR",
    channel: str | int | None = None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> profile_pb2.RecordEventsRequest:
    """A purchase (its total is the sum of the lines); ValueError names a malformed line."""
    event = _event(customer, time, event_id)
    paid = basket(lines, currency)
    event.purchase.CopyFrom(
        profile_pb2.Purchase(
            items=paid.items,
            amount=sum(item.amount for item in paid.items),
            currency=currency,
            store_id=store_id,
            channel=(
                names.channel(channel) if channel is not None else common_pb2.CHANNEL_UNSPECIFIED
            ),
        )
    )
    return profile_pb2.RecordEventsRequest(events=[event])


def profile_request(customer: CustomerLike) -> profile_pb2.GetProfileRequest:
    return profile_pb2.GetProfileRequest(customer=customer_ref(customer))
