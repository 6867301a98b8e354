"""Builders shared by the decision tests: requests, views and situations with sensible defaults."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from emma.common.v1 import common_pb2
from emma.decision.catalog import Offer
from emma.decision.domain import (
    Channel,
    ConsentStatus,
    CustomerView,
    DecideInput,
    Purpose,
    Situation,
    Touchpoint,
)

# A Monday in June, 10:00 in Berlin: morning, summer.
JUNE_MORNING = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)


def request(**changes: Any) -> DecideInput:
    base = DecideInput(
        customer_kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID,
        customer_value="c-1",
        touchpoint=Touchpoint.APP,
        request_time=JUNE_MORNING,
    )
    return dataclasses.replace(base, **changes)


def offer(offer_id: str = "o1", **changes: Any) -> Offer:
    base = Offer(
        offer_id=offer_id,
        title="An offer",
        category="cheese",
        products=("emmentaler",),
        channels=tuple(Channel),
    )
    return dataclasses.replace(base, **changes)


def situation(**changes: Any) -> Situation:
    base = Situation(
        resolved=True,
        local_time=JUNE_MORNING,
        daypart="morning",
        season="summer",
        weekday=1,
        store_id="berlin-mitte",
        features=(("daypart", "morning"), ("season", "summer"), ("hour", 10.0)),
    )
    return dataclasses.replace(base, **changes)


def customer(
    *,
    personalisation: bool = True,
    marketing: tuple[Channel, ...] = (),
    marketing_all: bool = False,
    **changes: Any,
) -> CustomerView:
    consents: dict[tuple[Purpose, Channel | None], ConsentStatus] = {}
    if personalisation:
        consents[(Purpose.PERSONALISATION, None)] = ConsentStatus.GRANTED
    if marketing_all:
        consents[(Purpose.MARKETING, None)] = ConsentStatus.GRANTED
    for channel in marketing:
        consents[(Purpose.MARKETING, channel)] = ConsentStatus.GRANTED
    base = CustomerView(available=True, found=True, consents=consents)
    return dataclasses.replace(base, **changes)
