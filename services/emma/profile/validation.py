"""Validation of requests in domain form; errors name the offending field's path."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from emma.common.basket import MAX_AMOUNT, BasketLine
from emma.profile.model import (
    Channel,
    ConsentChange,
    ConsentStatus,
    CustomerRef,
    Event,
    IdentifierKind,
    Interaction,
    InteractionKind,
    LifeEvent,
    LifeEventKind,
    LocationPing,
    OfferResponse,
    OfferResponseKind,
    Preferences,
    Purchase,
    Purpose,
    SupportContact,
)
from emma.runtime.errors import InvalidArgument

EVENT_TYPES = (
    "purchase",
    "interaction",
    "offer_response",
    "support_contact",
    "life_event",
    "location",
)
MAX_IDENTIFIER_CHARS = 256
MAX_LABEL_CHARS = 128
MAX_ITEMS_PER_PURCHASE = 500
MAX_PREFERENCE_ENTRIES = 200
MAX_CONSENT_CHANGES = 100
# Clocks of tills and phones drift; more than this ahead is a bug, not drift.
MAX_FUTURE = timedelta(days=1)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def validate_customer(ref: CustomerRef, path: str = "customer") -> None:
    if ref.kind == IdentifierKind.UNSPECIFIED:
        raise InvalidArgument(f"{path}.kind", "must be set")
    if ref.value.strip() == "":
        raise InvalidArgument(f"{path}.value", "must not be empty")
    if len(ref.value) > MAX_IDENTIFIER_CHARS:
        raise InvalidArgument(f"{path}.value", f"must be at most {MAX_IDENTIFIER_CHARS} characters")
    if ref.value != ref.value.strip() or any(c in ref.value for c in "\r\n\t"):
        raise InvalidArgument(f"{path}.value", "must not contain surrounding or control whitespace")


def _finite(value: float, path: str) -> None:
    if not math.isfinite(value):
        raise InvalidArgument(path, "must be a finite number")


def _non_negative(value: float, path: str) -> None:
    _finite(value, path)
    if value < 0:
        raise InvalidArgument(path, "must be >= 0")


def _label(value: str, path: str, *, required: bool = False) -> None:
    if required and value == "":
        raise InvalidArgument(path, "must not be empty")
    if len(value) > MAX_LABEL_CHARS:
        raise InvalidArgument(path, f"must be at most {MAX_LABEL_CHARS} characters")


def _not_future(time: datetime, now: datetime, path: str) -> None:
    if time - now > MAX_FUTURE:
        raise InvalidArgument(path, "must not be more than 1 day in the future")


# Event checks name fields relative to the event, and a failure gets its full path on the
# way out (`within`): a valid event, the common case, builds no path strings at all.


def within(prefix: str, error: InvalidArgument) -> InvalidArgument:
    """The error with its field path under `prefix` (an empty field names the prefix itself)."""
    return InvalidArgument(f"{prefix}.{error.field}" if error.field else prefix, error.problem)


def _amount(value: float, path: str) -> None:
    _non_negative(value, path)
    # Amounts become thousandths in an integer counter: a bound keeps them (and sums of
    # them) finite and exact.
    if value > MAX_AMOUNT:
        raise InvalidArgument(path, f"must be at most {MAX_AMOUNT:g}")


def _item(item: BasketLine) -> None:
    if item.product_id == "" and item.category == "":
        raise InvalidArgument("", "product_id or category must be set")
    _label(item.product_id, "product_id")
    _label(item.category, "category")
    _non_negative(item.quantity, "quantity")
    _amount(item.amount, "amount")


def _purchase(purchase: Purchase) -> None:
    if len(purchase.items) > MAX_ITEMS_PER_PURCHASE:
        raise InvalidArgument("items", f"at most {MAX_ITEMS_PER_PURCHASE} per purchase")
    for index, item in enumerate(purchase.items):
        try:
            _item(item)
        except InvalidArgument as error:
            raise within(f"items[{index}]", error) from None
    _amount(purchase.amount, "amount")
    if purchase.currency and not CURRENCY.match(purchase.currency):
        raise InvalidArgument("currency", "must be an ISO 4217 code such as EUR")
    _label(purchase.store_id, "store_id")


def _interaction(interaction: Interaction) -> None:
    if interaction.kind == InteractionKind.UNSPECIFIED:
        raise InvalidArgument("kind", "must be set")
    if interaction.product_id == "" and interaction.category == "":
        raise InvalidArgument("", "product_id or category must be set")
    _label(interaction.product_id, "product_id")
    _label(interaction.category, "category")


def _offer_response(response: OfferResponse) -> None:
    if response.kind == OfferResponseKind.UNSPECIFIED:
        raise InvalidArgument("kind", "must be set")
    _label(response.offer_id, "offer_id", required=True)
    _label(response.decision_event_id, "decision_event_id")


def _support_contact(contact: SupportContact) -> None:
    _finite(contact.sentiment, "sentiment")
    if not -1.0 <= contact.sentiment <= 1.0:
        raise InvalidArgument("sentiment", "must be in [-1, 1]")
    _label(contact.topic, "topic")


def _life_event(life: LifeEvent, now: datetime) -> None:
    if life.kind == LifeEventKind.UNSPECIFIED:
        raise InvalidArgument("kind", "must be set")
    if life.time is not None:
        _not_future(life.time, now, "time")
    _label(life.store_id, "store_id")


def _location(ping: LocationPing) -> None:
    _finite(ping.latitude, "location.latitude")
    _finite(ping.longitude, "location.longitude")
    if not -90.0 <= ping.latitude <= 90.0:
        raise InvalidArgument("location.latitude", "must be in [-90, 90]")
    if not -180.0 <= ping.longitude <= 180.0:
        raise InvalidArgument("location.longitude", "must be in [-180, 180]")
    _non_negative(ping.accuracy, "accuracy")


_CHECKS: dict[type, tuple[str, Callable[[Any, datetime], None]]] = {
    Purchase: ("purchase", lambda payload, now: _purchase(payload)),
    Interaction: ("interaction", lambda payload, now: _interaction(payload)),
    OfferResponse: ("offer_response", lambda payload, now: _offer_response(payload)),
    SupportContact: ("support_contact", lambda payload, now: _support_contact(payload)),
    LifeEvent: ("life_event", _life_event),
    LocationPing: ("location", lambda payload, now: _location(payload)),
}


def _payload(payload: object, now: datetime) -> None:
    found = _CHECKS.get(type(payload))
    if found is None:
        # Also what an event type this server does not know (a newer client's) arrives as.
        raise InvalidArgument("payload", f"must be one of {', '.join(EVENT_TYPES)}")
    name, check = found
    try:
        check(payload, now)
    except InvalidArgument as error:
        raise within(name, error) from None


def _event(event: Event, now: datetime) -> None:
    _label(event.event_id, "event_id", required=True)
    validate_customer(event.customer, "customer")
    _not_future(event.time, now, "time")
    _payload(event.payload, now)


def validate_event(event: Event, now: datetime, path: str) -> None:
    """Checks one event; `path` is its place in the request, e.g. `events[2]`."""
    try:
        _event(event, now)
    except InvalidArgument as error:
        raise within(path, error) from None


def validate_batch(events: Sequence[Event], now: datetime, max_events: int) -> None:
    """Checks a whole batch before anything is written, so one bad event rejects all of it."""
    if len(events) > max_events:
        raise InvalidArgument("events", f"at most {max_events} per batch")
    for index, event in enumerate(events):
        try:
            _event(event, now)
        except InvalidArgument as error:
            raise within(f"events[{index}]", error) from None


def _labels(values: Sequence[str], path: str) -> None:
    if len(values) > MAX_PREFERENCE_ENTRIES:
        raise InvalidArgument(path, f"at most {MAX_PREFERENCE_ENTRIES} entries")
    for index, value in enumerate(values):
        _label(value, f"{path}[{index}]", required=True)


def validate_preferences(prefs: Preferences, fields: Sequence[str], path: str) -> None:
    """Checks the fields of `prefs` that will be written."""
    for name in ("liked_products", "liked_categories", "disliked_products", "disliked_categories"):
        if name in fields:
            _labels(getattr(prefs, name), f"{path}.{name}")
    if "preferred_channels" in fields:
        for index, channel in enumerate(prefs.preferred_channels):
            if channel == Channel.UNSPECIFIED:
                raise InvalidArgument(f"{path}.preferred_channels[{index}]", "must be set")
    if "quiet_hours" in fields and prefs.quiet_hours is not None:
        for name in ("start_minute", "end_minute"):
            minute = getattr(prefs.quiet_hours, name)
            if not 0 <= minute < 1440:
                raise InvalidArgument(f"{path}.quiet_hours.{name}", "must be in [0, 1440)")
    if "language" in fields and prefs.language and not _LANGUAGE.match(prefs.language):
        raise InvalidArgument(f"{path}.language", "must be a BCP 47 tag such as de-DE")
    for kind in ("products", "categories"):
        liked, disliked = f"liked_{kind}", f"disliked_{kind}"
        if liked in fields and disliked in fields:
            both = set(getattr(prefs, liked))
            for index, value in enumerate(getattr(prefs, disliked)):
                if value in both:
                    raise InvalidArgument(f"{path}.{disliked}[{index}]", f"{value!r} is also liked")


def validate_consent_changes(changes: Sequence[ConsentChange], now: datetime) -> None:
    if not changes:
        raise InvalidArgument("changes", "must not be empty")
    if len(changes) > MAX_CONSENT_CHANGES:
        raise InvalidArgument("changes", f"at most {MAX_CONSENT_CHANGES} per request")
    for index, change in enumerate(changes):
        path = f"changes[{index}]"
        if change.purpose == Purpose.UNSPECIFIED:
            raise InvalidArgument(f"{path}.purpose", "must be set")
        if change.status == ConsentStatus.UNSPECIFIED:
            raise InvalidArgument(f"{path}.status", "must be set")
        _not_future(change.time, now, f"{path}.time")
        _label(change.source, f"{path}.source")
