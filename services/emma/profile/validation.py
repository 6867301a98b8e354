"""Validation of requests in domain form; errors name the offending field's path."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

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

MAX_IDENTIFIER_CHARS = 256
MAX_LABEL_CHARS = 128
MAX_ITEMS_PER_PURCHASE = 500
MAX_PREFERENCE_ENTRIES = 200
MAX_CONSENT_CHANGES = 100
# Clocks of tills and phones drift; more than this ahead is a bug, not drift.
MAX_FUTURE = timedelta(days=1)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


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


def _purchase(purchase: Purchase, path: str) -> None:
    if len(purchase.items) > MAX_ITEMS_PER_PURCHASE:
        raise InvalidArgument(f"{path}.items", f"at most {MAX_ITEMS_PER_PURCHASE} per purchase")
    for index, item in enumerate(purchase.items):
        item_path = f"{path}.items[{index}]"
        if item.product_id == "" and item.category == "":
            raise InvalidArgument(item_path, "product_id or category must be set")
        _label(item.product_id, f"{item_path}.product_id")
        _label(item.category, f"{item_path}.category")
        _non_negative(item.quantity, f"{item_path}.quantity")
        _non_negative(item.amount, f"{item_path}.amount")
    _non_negative(purchase.amount, f"{path}.amount")
    if purchase.currency and not _CURRENCY.match(purchase.currency):
        raise InvalidArgument(f"{path}.currency", "must be an ISO 4217 code such as EUR")
    _label(purchase.store_id, f"{path}.store_id")


def _interaction(interaction: Interaction, path: str) -> None:
    if interaction.kind == InteractionKind.UNSPECIFIED:
        raise InvalidArgument(f"{path}.kind", "must be set")
    if interaction.product_id == "" and interaction.category == "":
        raise InvalidArgument(path, "product_id or category must be set")
    _label(interaction.product_id, f"{path}.product_id")
    _label(interaction.category, f"{path}.category")


def _offer_response(response: OfferResponse, path: str) -> None:
    if response.kind == OfferResponseKind.UNSPECIFIED:
        raise InvalidArgument(f"{path}.kind", "must be set")
    _label(response.offer_id, f"{path}.offer_id", required=True)
    _label(response.decision_event_id, f"{path}.decision_event_id")


def _support_contact(contact: SupportContact, path: str) -> None:
    _finite(contact.sentiment, f"{path}.sentiment")
    if not -1.0 <= contact.sentiment <= 1.0:
        raise InvalidArgument(f"{path}.sentiment", "must be in [-1, 1]")
    _label(contact.topic, f"{path}.topic")


def _life_event(life: LifeEvent, now: datetime, path: str) -> None:
    if life.kind == LifeEventKind.UNSPECIFIED:
        raise InvalidArgument(f"{path}.kind", "must be set")
    if life.time is not None:
        _not_future(life.time, now, f"{path}.time")
    _label(life.store_id, f"{path}.store_id")


def _location(ping: LocationPing, path: str) -> None:
    _finite(ping.latitude, f"{path}.location.latitude")
    _finite(ping.longitude, f"{path}.location.longitude")
    if not -90.0 <= ping.latitude <= 90.0:
        raise InvalidArgument(f"{path}.location.latitude", "must be in [-90, 90]")
    if not -180.0 <= ping.longitude <= 180.0:
        raise InvalidArgument(f"{path}.location.longitude", "must be in [-180, 180]")
    _non_negative(ping.accuracy, f"{path}.accuracy")


def validate_event(event: Event, now: datetime, path: str) -> None:
    """Checks one event; `path` is its place in the request, e.g. `events[2]`."""
    _label(event.event_id, f"{path}.event_id", required=True)
    validate_customer(event.customer, f"{path}.customer")
    _not_future(event.time, now, f"{path}.time")
    payload = event.payload
    if payload is None:
        raise InvalidArgument(f"{path}.payload", "must be set")
    if isinstance(payload, Purchase):
        _purchase(payload, f"{path}.purchase")
    elif isinstance(payload, Interaction):
        _interaction(payload, f"{path}.interaction")
    elif isinstance(payload, OfferResponse):
        _offer_response(payload, f"{path}.offer_response")
    elif isinstance(payload, SupportContact):
        _support_contact(payload, f"{path}.support_contact")
    elif isinstance(payload, LifeEvent):
        _life_event(payload, now, f"{path}.life_event")
    else:
        _location(payload, f"{path}.location")


def validate_batch(events: Sequence[Event], now: datetime, max_events: int) -> None:
    """Checks a whole batch before anything is written, so one bad event rejects all of it."""
    if len(events) > max_events:
        raise InvalidArgument("events", f"at most {max_events} per batch")
    for index, event in enumerate(events):
        validate_event(event, now, f"events[{index}]")


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
