"""How domain values are stored in Redis, and how a customer's stored keys become a Profile."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from emma.profile import aggregates
from emma.profile.consent import Slot, ordered
from emma.profile.model import (
    PREFERENCE_FIELDS,
    Channel,
    ConsentChange,
    ConsentState,
    ConsentStatus,
    CustomerRef,
    Preferences,
    Profile,
    Purpose,
    QuietHours,
    Rfm,
)

ALL_CHANNELS = "all"


def _channel_name(channel: Channel) -> str:
    return ALL_CHANNELS if channel == Channel.UNSPECIFIED else channel.name.lower()


def _channel(name: str) -> Channel:
    return Channel.UNSPECIFIED if name == ALL_CHANNELS else Channel[name.upper()]


def _time(seconds: str | float) -> datetime:
    return aggregates.from_epoch(float(seconds))


def encode_preferences(prefs: Preferences, fields: Iterable[str]) -> dict[str, str]:
    """One JSON value per preference field named in `fields`."""
    encoded: dict[str, str] = {}
    for name in fields:
        value: Any = getattr(prefs, name)
        if name == "preferred_channels":
            value = [_channel_name(channel) for channel in value]
        elif name == "quiet_hours":
            value = None if value is None else dataclasses.asdict(value)
        elif isinstance(value, tuple):
            value = list(value)
        encoded[name] = json.dumps(value)
    return encoded


def decode_preferences(raw: Mapping[str, str]) -> Preferences:
    values: dict[str, Any] = {}
    for name in PREFERENCE_FIELDS:
        if name not in raw:
            continue
        value = json.loads(raw[name])
        if name == "preferred_channels":
            value = tuple(_channel(channel) for channel in value)
        elif name == "quiet_hours":
            value = None if value is None else QuietHours(**value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return Preferences(**values)


def encode_consent_change(change: ConsentChange) -> str:
    return json.dumps(
        {
            "purpose": change.purpose.name.lower(),
            "channel": _channel_name(change.channel),
            "status": change.status.name.lower(),
            "time": aggregates.epoch(change.time),
            "source": change.source,
        }
    )


def decode_consent_change(text: str) -> ConsentChange:
    item = json.loads(text)
    return ConsentChange(
        Purpose[item["purpose"].upper()],
        _channel(item["channel"]),
        ConsentStatus[item["status"].upper()],
        _time(item["time"]),
        item["source"],
    )


def consent_field(slot: Slot) -> str:
    return f"{slot[0].name.lower()}:{_channel_name(slot[1])}"


def encode_effective(effective: Mapping[Slot, ConsentState]) -> dict[str, str]:
    return {
        consent_field(slot): json.dumps(
            {
                "status": state.status.name.lower(),
                "since": aggregates.epoch(state.since),
                "source": state.source,
            }
        )
        for slot, state in effective.items()
    }


def decode_effective(raw: Mapping[str, str]) -> dict[Slot, ConsentState]:
    effective: dict[Slot, ConsentState] = {}
    for field, text in raw.items():
        purpose_name, _, channel_name = field.partition(":")
        item = json.loads(text)
        slot = (Purpose[purpose_name.upper()], _channel(channel_name))
        effective[slot] = ConsentState(
            slot[0],
            slot[1],
            ConsentStatus[item["status"].upper()],
            _time(item["since"]),
            item["source"],
        )
    return effective


@dataclasses.dataclass(frozen=True)
class StoredCustomer:
    """The keys of one customer as read in one snapshot (missing keys read as empty)."""

    customer_id: str
    profile: Mapping[str, str]
    ids: Iterable[str]
    categories: Mapping[str, str]
    products: Mapping[str, str]
    stores: Mapping[str, str]
    channels: Mapping[str, str]
    hours: Mapping[str, str]
    preferences: Mapping[str, str]
    consent: Mapping[str, str]

    @property
    def exists(self) -> bool:
        return bool(self.profile)


def build_profile(stored: StoredCustomer, now: datetime, half_life_s: float) -> Profile:
    """The profile as of `now`: every decayed value is decayed to `now`."""
    fields = stored.profile
    at = aggregates.epoch(now)
    rfm = Rfm(
        last_purchase_at=_time(fields["last_purchase_at"])
        if "last_purchase_at" in fields
        else None,
        purchase_count=int(fields.get("purchase_count", "0")),
        total_spend=float(fields.get("total_spend", "0")),
    )
    created_at = _time(fields["created_at"]) if "created_at" in fields else None
    sentiment = aggregates.sentiment(fields.get("sentiment"), at, half_life_s)
    return Profile(
        customer_id=stored.customer_id,
        identifiers=tuple(sorted((CustomerRef.decode(text) for text in stored.ids), key=_ref_key)),
        created_at=created_at,
        updated_at=_time(fields["updated_at"]) if "updated_at" in fields else None,
        rfm=rfm,
        category_affinities=aggregates.affinities(stored.categories, at, half_life_s),
        product_affinities=aggregates.affinities(stored.products, at, half_life_s),
        channels=aggregates.channel_stats(stored.channels, at, half_life_s),
        active_hours=aggregates.active_hours(stored.hours, at, half_life_s),
        sentiment=sentiment,
        recent_life_events=aggregates.life_events(json.loads(fields.get("life_events", "[]"))),
        preferences=decode_preferences(stored.preferences),
        consents=ordered(decode_effective(stored.consent)),
        segments=aggregates.segments(rfm, created_at, sentiment, now),
        home_store_id=aggregates.home_store(
            fields.get("home_store", ""), stored.stores, at, half_life_s
        ),
    )


def _ref_key(ref: CustomerRef) -> tuple[int, str]:
    return (ref.kind, ref.value)
