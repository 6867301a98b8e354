"""Conversion between the profile protos and the domain objects, with enum and time checks."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TypeVar, cast

from google.protobuf.timestamp_pb2 import Timestamp

from emma.common.basket import BasketLine
from emma.common.timestamps import stamp
from emma.common.v1 import common_pb2
from emma.profile import model
from emma.profile.model import PREFERENCE_FIELDS
from emma.profile.v1 import profile_pb2
from emma.runtime.errors import InvalidArgument

E = TypeVar("E", bound=enum.IntEnum)


# Enum lookups by value through a dict: Enum's own call is slow enough to matter for bulk
# loads of events.
_MEMBERS: dict[type[enum.IntEnum], dict[int, enum.IntEnum]] = {}


def _enum(kind: type[E], value: int, path: str) -> E:
    members = _MEMBERS.get(kind)
    if members is None:
        members = _MEMBERS[kind] = {member.value: member for member in kind}
    member = members.get(value)
    if member is None:
        raise InvalidArgument(path, f"unknown value {value}")
    return cast(E, member)


# Timestamp's documented range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z: what every
# reader of a recorded event (the wallet, the trigger engine) can turn into a datetime.
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799


def valid_stamp(seconds: int, nanos: int) -> bool:
    return MIN_SECONDS <= seconds <= MAX_SECONDS and 0 <= nanos < 1_000_000_000


def _time(stamp: Timestamp, path: str) -> datetime:
    seconds, nanos = stamp.seconds, stamp.nanos
    if not valid_stamp(seconds, nanos):
        raise InvalidArgument(path, "out of range")
    # Faster than Timestamp.ToDatetime, which matters for bulk loads of events.
    try:
        return datetime.fromtimestamp(seconds + nanos / 1e9, UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidArgument(path, "out of range") from None


def _stamp(time: datetime | None) -> Timestamp | None:
    return None if time is None else stamp(time)


def customer_ref(message: common_pb2.CustomerRef, path: str = "customer") -> model.CustomerRef:
    return model.CustomerRef(
        _enum(model.IdentifierKind, message.kind, f"{path}.kind"), message.value
    )


def _channel(value: int, path: str) -> model.Channel:
    return _enum(model.Channel, value, path)


# Paths are relative to the event here and completed on the way out of `event`, so a
# valid event, the common case, builds no path strings.


def _payload(message: profile_pb2.Event) -> model.Payload | None:
    which = message.WhichOneof("payload")
    if which == "purchase":
        p = message.purchase
        return model.Purchase(
            items=tuple(
                BasketLine(item.product_id, item.category, item.quantity, item.amount)
                for item in p.items
            ),
            amount=p.amount,
            currency=p.currency,
            store_id=p.store_id,
            channel=_channel(p.channel, "purchase.channel"),
        )
    if which == "interaction":
        i = message.interaction
        return model.Interaction(
            _enum(model.InteractionKind, i.kind, "interaction.kind"),
            i.product_id,
            i.category,
            _channel(i.channel, "interaction.channel"),
        )
    if which == "offer_response":
        r = message.offer_response
        if r.HasField("expires_at"):
            # Not part of the domain event, but the wallet reads it once the batch is written.
            _time(r.expires_at, "offer_response.expires_at")
        return model.OfferResponse(
            _enum(model.OfferResponseKind, r.kind, "offer_response.kind"),
            r.offer_id,
            r.decision_event_id,
            _channel(r.channel, "offer_response.channel"),
        )
    if which == "support_contact":
        s = message.support_contact
        return model.SupportContact(
            s.sentiment, s.topic, _channel(s.channel, "support_contact.channel")
        )
    if which == "life_event":
        life = message.life_event
        return model.LifeEvent(
            _enum(model.LifeEventKind, life.kind, "life_event.kind"),
            _time(life.time, "life_event.time") if life.HasField("time") else None,
            life.store_id,
        )
    if which == "location":
        ping = message.location
        return model.LocationPing(ping.location.latitude, ping.location.longitude, ping.accuracy)
    return None


def _event(message: profile_pb2.Event, now: datetime) -> model.Event:
    return model.Event(
        event_id=message.event_id,
        customer=customer_ref(message.customer, "customer"),
        time=_time(message.time, "time") if message.HasField("time") else now,
        payload=_payload(message),
    )


def event(message: profile_pb2.Event, path: str, now: datetime) -> model.Event:
    """An event; one without a time happened when it was received."""
    try:
        return _event(message, now)
    except InvalidArgument as error:
        raise InvalidArgument(f"{path}.{error.field}", error.problem) from None


def events(messages: Iterable[profile_pb2.Event], now: datetime) -> list[model.Event]:
    result = []
    for index, message in enumerate(messages):
        try:
            result.append(_event(message, now))
        except InvalidArgument as error:
            raise InvalidArgument(f"events[{index}].{error.field}", error.problem) from None
    return result


def preferences(message: profile_pb2.Preferences, path: str) -> model.Preferences:
    quiet = message.quiet_hours
    return model.Preferences(
        liked_products=tuple(dict.fromkeys(message.liked_products)),
        liked_categories=tuple(dict.fromkeys(message.liked_categories)),
        disliked_products=tuple(dict.fromkeys(message.disliked_products)),
        disliked_categories=tuple(dict.fromkeys(message.disliked_categories)),
        preferred_channels=tuple(
            dict.fromkeys(
                _channel(value, f"{path}.preferred_channels[{index}]")
                for index, value in enumerate(message.preferred_channels)
            )
        ),
        quiet_hours=(
            model.QuietHours(quiet.start_minute, quiet.end_minute, quiet.enabled)
            if message.HasField("quiet_hours")
            else None
        ),
        language=message.language,
    )


def mask_fields(paths: Iterable[str]) -> list[str]:
    """The preference fields an update mask names; all of them for an empty mask."""
    fields: list[str] = []
    for index, name in enumerate(paths):
        if name not in PREFERENCE_FIELDS:
            raise InvalidArgument(
                f"update_mask.paths[{index}]",
                f"unknown field {name!r}; expected one of {', '.join(PREFERENCE_FIELDS)}",
            )
        if name not in fields:
            fields.append(name)
    return fields or list(PREFERENCE_FIELDS)


def consent_changes(
    messages: Iterable[profile_pb2.ConsentChange], now: datetime
) -> list[model.ConsentChange]:
    """Consent changes; one without a time happened when it was received."""
    changes = []
    for index, message in enumerate(messages):
        path = f"changes[{index}]"
        changes.append(
            model.ConsentChange(
                _enum(model.Purpose, message.purpose, f"{path}.purpose"),
                _channel(message.channel, f"{path}.channel"),
                _enum(model.ConsentStatus, message.status, f"{path}.status"),
                _time(message.time, f"{path}.time") if message.HasField("time") else now,
                message.source,
            )
        )
    return changes


# --- domain -> proto ----------------------------------------------------------------------


def ref_proto(ref: model.CustomerRef) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(kind=ref.kind.value, value=ref.value)  # type: ignore[arg-type]


def preferences_proto(prefs: model.Preferences) -> profile_pb2.Preferences:
    message = profile_pb2.Preferences(
        liked_products=prefs.liked_products,
        liked_categories=prefs.liked_categories,
        disliked_products=prefs.disliked_products,
        disliked_categories=prefs.disliked_categories,
        preferred_channels=[channel.value for channel in prefs.preferred_channels],  # type: ignore[misc]
        language=prefs.language,
    )
    if prefs.quiet_hours is not None:
        q = prefs.quiet_hours
        message.quiet_hours.CopyFrom(
            profile_pb2.QuietHours(
                start_minute=q.start_minute, end_minute=q.end_minute, enabled=q.enabled
            )
        )
    return message


def consent_state_proto(state: model.ConsentState) -> profile_pb2.ConsentState:
    return profile_pb2.ConsentState(
        purpose=state.purpose.value,  # type: ignore[arg-type]
        channel=state.channel.value,  # type: ignore[arg-type]
        status=state.status.value,  # type: ignore[arg-type]
        since=_stamp(state.since),
        source=state.source,
    )


def consent_change_proto(change: model.ConsentChange) -> profile_pb2.ConsentChange:
    return profile_pb2.ConsentChange(
        purpose=change.purpose.value,  # type: ignore[arg-type]
        channel=change.channel.value,  # type: ignore[arg-type]
        status=change.status.value,  # type: ignore[arg-type]
        time=_stamp(change.time),
        source=change.source,
    )


def profile_proto(profile: model.Profile) -> profile_pb2.Profile:
    rfm = profile.rfm
    return profile_pb2.Profile(
        customer_id=profile.customer_id,
        identifiers=[ref_proto(ref) for ref in profile.identifiers],
        created_at=_stamp(profile.created_at),
        updated_at=_stamp(profile.updated_at),
        rfm=profile_pb2.Rfm(
            last_purchase_at=_stamp(rfm.last_purchase_at),
            purchase_count=rfm.purchase_count,
            total_spend=rfm.total_spend,
        ),
        category_affinities=[
            profile_pb2.Affinity(key=a.key, score=a.score) for a in profile.category_affinities
        ],
        product_affinities=[
            profile_pb2.Affinity(key=a.key, score=a.score) for a in profile.product_affinities
        ],
        channels=[
            profile_pb2.ChannelStats(
                channel=s.channel.value,  # type: ignore[arg-type]
                impressions=s.impressions,
                responses=s.responses,
                responsiveness=s.responsiveness,
            )
            for s in profile.channels
        ],
        active_hours=profile.active_hours,
        sentiment=profile.sentiment,
        recent_life_events=[
            profile_pb2.LifeEvent(
                kind=e.kind.value,  # type: ignore[arg-type]
                time=_stamp(e.time),
                store_id=e.store_id,
            )
            for e in profile.recent_life_events
        ],
        preferences=preferences_proto(profile.preferences),
        consents=[consent_state_proto(state) for state in profile.consents],
        segments=profile.segments,
        home_store_id=profile.home_store_id,
        offer_history=[offer_history_proto(offer) for offer in profile.offer_history],
    )


def offer_history_proto(offer: model.OfferHistory) -> profile_pb2.OfferHistory:
    return profile_pb2.OfferHistory(
        offer_id=offer.offer_id,
        last_shown=_stamp(offer.last_shown),
        last_clicked=_stamp(offer.last_clicked),
        last_redeemed=_stamp(offer.last_redeemed),
        last_dismissed=_stamp(offer.last_dismissed),
        dismissals=offer.dismissals,
    )
