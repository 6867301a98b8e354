"""How domain values are stored in Redis, and how a customer's stored keys become a Profile."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from emma.profile import aggregates
from emma.profile.consent import Slot, ordered
from emma.profile.model import (
    PREFERENCE_FIELDS,
    Channel,
    ConsentChange,
    ConsentState,
    ConsentStatus,
    Preferences,
    Profile,
    Purpose,
    QuietHours,
)
from emma.profile.record import CATEGORY, PRODUCT, Record

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
        value = orjson.loads(raw[name])
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
        # orjson: a profile read decodes every consent and preference field, and each
        # small object costs json.loads three times as many instructions.
        item = orjson.loads(text)
        slot = (Purpose[purpose_name.upper()], _channel(channel_name))
        effective[slot] = ConsentState(
            slot[0],
            slot[1],
            ConsentStatus[item["status"].upper()],
            _time(item["since"]),
            item["source"],
        )
    return effective


def pairs(flat: Sequence[str]) -> dict[str, str]:
    """A flat [field, value, ...] reply (HGETALL inside a script) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclasses.dataclass(frozen=True)
class Stored:
    """A customer's keys as one script read them; missing keys read as empty."""

    customer_id: str
    record: Record
    consent: Mapping[str, str]
    preferences: Mapping[str, str]
    life_events: Sequence[str]
    # Read by the snapshot script only (export and merge).
    ledger: Sequence[str] = ()
    seen: Sequence[str] = ()
    seen_prev: Sequence[str] = ()
    # The offer wallet's hash as stored (wallet.py).
    wallet: Mapping[str, str] = dataclasses.field(default_factory=dict)


def build_profile(
    stored: Stored, now: datetime, half_life_s: float, *, complete: bool = True
) -> Profile:
    """The profile as of `now`: every decayed value is decayed to `now`.

    Not `complete`, the identifiers, product affinities and life events are left empty:
    a decision reads none of them (emma.decision.profile_view), and they are most of the
    objects a profile is built of.
    """
    record = stored.record
    reader = aggregates.Reader(record, aggregates.epoch(now), half_life_s)
    rfm = aggregates.rfm(record)
    created = record.time("C")
    updated = record.time("U")
    created_at = None if created is None else _time(created)
    sentiment = aggregates.sentiment(record)
    return Profile(
        customer_id=stored.customer_id,
        identifiers=tuple(record.refs()) if complete else (),
        created_at=created_at,
        updated_at=None if updated is None else _time(updated),
        rfm=rfm,
        category_affinities=aggregates.ranked(reader.family(CATEGORY)),
        product_affinities=aggregates.ranked(reader.family(PRODUCT)) if complete else (),
        channels=aggregates.channel_stats(reader),
        active_hours=aggregates.active_hours(reader),
        sentiment=sentiment,
        recent_life_events=aggregates.life_events(list(stored.life_events)) if complete else (),
        preferences=decode_preferences(stored.preferences),
        consents=ordered(decode_effective(stored.consent)),
        segments=aggregates.segments(rfm, created_at, sentiment, now),
        home_store_id=aggregates.home_store(record, reader),
        offer_history=aggregates.offer_history(reader),
    )
