"""The demo customers file (customers.yaml) as typed data and as profile service requests."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from google.protobuf import field_mask_pb2

from emma.common import sdk as names
from emma.common.sdk import basket_item, customer_ref, timestamp
from emma.common.v1 import common_pb2
from emma.demo import CUSTOMERS_PATH
from emma.profile.v1 import profile_pb2

# Demo times are local to the demo stores.
DEMO_ZONE = ZoneInfo("Europe/Berlin")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One Decide that `emma demo` makes."""

    customer: str
    touchpoint: str
    store: str = ""
    basket: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DemoCustomer:
    name: str
    customer_id: str
    about: str = ""
    identifiers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    consent: Sequence[Mapping[str, Any]] = ()
    preferences: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    purchases: Sequence[Mapping[str, Any]] = ()
    interactions: Sequence[Mapping[str, Any]] = ()

    @property
    def ref(self) -> common_pb2.CustomerRef:
        return customer_ref(("customer_id", self.customer_id))


@dataclasses.dataclass(frozen=True)
class DemoData:
    customers: tuple[DemoCustomer, ...]
    scenarios: tuple[Scenario, ...]

    def customer(self, name: str) -> DemoCustomer:
        for customer in self.customers:
            if customer.name == name:
                return customer
        raise KeyError(name)


def load_demo_data(path: Path = CUSTOMERS_PATH) -> DemoData:
    """Reads customers.yaml; ValueError names the entry that is malformed."""
    raw = yaml.safe_load(path.read_text())
    customers = []
    for index, entry in enumerate(raw.get("customers", [])):
        try:
            customers.append(DemoCustomer(**entry))
        except TypeError as error:
            raise ValueError(f"{path}: customers[{index}]: {error}") from None
    scenarios = []
    for index, entry in enumerate(raw.get("scenarios", [])):
        try:
            scenarios.append(Scenario(**{**entry, "basket": tuple(entry.get("basket", ()))}))
        except TypeError as error:
            raise ValueError(f"{path}: scenarios[{index}]: {error}") from None
    return DemoData(tuple(customers), tuple(scenarios))


def identifier_refs(customer: DemoCustomer) -> list[common_pb2.CustomerRef]:
    """The extra identifiers; an e-mail address becomes its SHA-256 as the protocol wants."""
    refs = []
    for kind, value in customer.identifiers.items():
        if kind == "email":
            digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()
            refs.append(customer_ref(("email_sha256", digest)))
        else:
            refs.append(customer_ref((kind, str(value))))
    return refs


def _moment(entry: Mapping[str, Any], now: datetime) -> datetime:
    """days_ago + local "HH:MM", never after `now` (a demo loaded early in the morning)."""
    hour, minute = (int(part) for part in str(entry.get("at", "12:00")).split(":"))
    day = (now.astimezone(DEMO_ZONE) - timedelta(days=int(entry.get("days_ago", 0)))).date()
    moment = datetime.combine(day, time(hour, minute), tzinfo=DEMO_ZONE)
    return min(moment, now - timedelta(minutes=1))


def _event(
    customer: DemoCustomer, event_id: str, entry: Mapping[str, Any], now: datetime
) -> profile_pb2.Event:
    return profile_pb2.Event(
        event_id=f"demo-{customer.name}-{event_id}",
        customer=customer.ref,
        time=timestamp(_moment(entry, now)),
    )


def events(customer: DemoCustomer, now: datetime) -> list[profile_pb2.Event]:
    """The purchase history and interactions, with fixed event ids (loading is idempotent)."""
    result = []
    for index, entry in enumerate(customer.purchases):
        event = _event(customer, f"purchase-{index}", entry, now)
        event.purchase.items.extend(basket_item(line, i) for i, line in enumerate(entry["items"]))
        event.purchase.currency = "EUR"
        event.purchase.store_id = entry.get("store", "")
        if "channel" in entry:
            event.purchase.channel = names.channel(entry["channel"])
        result.append(event)
    for index, entry in enumerate(customer.interactions):
        event = _event(customer, f"interaction-{index}", entry, now)
        interaction = event.interaction
        interaction.kind = profile_pb2.InteractionKind.Value(
            f"INTERACTION_KIND_{entry['kind'].upper()}"
        )
        interaction.product_id = entry.get("product", "")
        interaction.category = entry.get("category", "")
        if "channel" in entry:
            interaction.channel = names.channel(entry["channel"])
        result.append(event)
    return result


def consent_request(customer: DemoCustomer, now: datetime) -> profile_pb2.UpdateConsentRequest:
    request = profile_pb2.UpdateConsentRequest(customer=customer.ref)
    for entry in customer.consent:
        request.changes.append(
            profile_pb2.ConsentChange(
                purpose=profile_pb2.Purpose.Value(f"PURPOSE_{entry['purpose'].upper()}"),
                channel=(
                    names.channel(entry["channel"])
                    if "channel" in entry
                    else common_pb2.CHANNEL_UNSPECIFIED
                ),
                status=profile_pb2.ConsentStatus.Value(f"CONSENT_STATUS_{entry['status'].upper()}"),
                time=timestamp(now),
                source=entry.get("source", "demo"),
            )
        )
    return request


def _minutes(clock: str) -> int:
    hour, minute = (int(part) for part in clock.strip().split(":"))
    return hour * 60 + minute


def preferences_request(customer: DemoCustomer) -> profile_pb2.UpdatePreferencesRequest:
    """Replaces exactly the preference fields the file names (the update mask)."""
    prefs = dict(customer.preferences)
    message = profile_pb2.Preferences(language=prefs.pop("language", ""))
    paths = ["language"] if message.language else []
    for name in ("liked_products", "liked_categories", "disliked_products", "disliked_categories"):
        if name in prefs:
            getattr(message, name).extend(prefs.pop(name))
            paths.append(name)
    if "preferred_channels" in prefs:
        message.preferred_channels.extend(names.channel(c) for c in prefs.pop("preferred_channels"))
        paths.append("preferred_channels")
    if "quiet_hours" in prefs:
        start, end = str(prefs.pop("quiet_hours")).split("-")
        message.quiet_hours.CopyFrom(
            profile_pb2.QuietHours(
                start_minute=_minutes(start), end_minute=_minutes(end), enabled=True
            )
        )
        paths.append("quiet_hours")
    if prefs:
        raise ValueError(f"customer {customer.name}: unknown preferences {sorted(prefs)}")
    return profile_pb2.UpdatePreferencesRequest(
        customer=customer.ref,
        preferences=message,
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )
