"""Small builders of domain events for the profile tests."""

from __future__ import annotations

from datetime import datetime

from emma.common.basket import BasketLine
from emma.profile.model import (
    Channel,
    CustomerRef,
    Event,
    IdentifierKind,
    OfferResponse,
    OfferResponseKind,
    Payload,
    Purchase,
)


def cid(value: str) -> CustomerRef:
    return CustomerRef(IdentifierKind.CUSTOMER_ID, value)


def card(value: str) -> CustomerRef:
    return CustomerRef(IdentifierKind.LOYALTY_CARD, value)


def purchase(
    event_id: str,
    customer: CustomerRef,
    time: datetime,
    *lines: tuple[str, str, float],
    amount: float = 0.0,
    store_id: str = "",
) -> Event:
    items = tuple(BasketLine(product, category, 1.0, price) for product, category, price in lines)
    payload = Purchase(items, amount, "EUR", store_id, Channel.RECEIPT)
    return Event(event_id, customer, time, payload)


def offer(
    event_id: str,
    customer: CustomerRef,
    time: datetime,
    kind: OfferResponseKind,
    offer_id: str,
    channel: Channel = Channel.PUSH,
) -> Event:
    return Event(event_id, customer, time, OfferResponse(kind, offer_id, "", channel))


def event(event_id: str, customer: CustomerRef, time: datetime, payload: Payload | None) -> Event:
    return Event(event_id, customer, time, payload)
