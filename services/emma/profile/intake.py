"""Reads a RecordEvents batch straight from its protos; anything unusual takes the checked path.

The checked path (convert.events, then validation.validate_batch, then
aggregates.event_ops) builds domain objects for every event and names the field of any
error. Most batches are plain purchases, interactions, offer responses and support
contacts; for those this module makes the same updates straight from the protos, with
checks that accept a subset of what the checked path accepts. When an event fails one of
them, or is of a rarer kind, the batch (or that one event) goes the checked way, which
then either reports the exact error or, for a valid event, makes its updates itself. The
result is the same either way (tests/profile/test_intake.py compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.message import Message

from emma.common.basket import MAX_AMOUNT
from emma.common.v1 import common_pb2
from emma.profile import aggregates, batch, convert, validation
from emma.profile.aggregates import INTERACTION_WEIGHTS, Op, fixed_point, local_hour_at
from emma.profile.keys import home_id
from emma.profile.model import (
    Channel,
    CustomerRef,
    IdentifierKind,
    InteractionKind,
    OfferResponseKind,
)
from emma.profile.record import CATEGORY, HOUR, IMPRESSIONS, PRODUCT, RESPONSES, STORE
from emma.profile.v1 import profile_pb2
from emma.profile.validation import (
    MAX_FUTURE,
    MAX_IDENTIFIER_CHARS,
    MAX_ITEMS_PER_PURCHASE,
    MAX_LABEL_CHARS,
)
from emma.runtime.errors import InvalidArgument

_KINDS = frozenset(int(k) for k in IdentifierKind if k != IdentifierKind.UNSPECIFIED)
_CHANNELS = frozenset(int(c) for c in Channel)
_INTERACTIONS = {int(k): INTERACTION_WEIGHTS.get(k, 0.0) for k in InteractionKind if k}
_OFFER_KINDS = frozenset(int(k) for k in OfferResponseKind if k)
_SHOWN = int(OfferResponseKind.SHOWN)
_ANSWERED = frozenset((int(OfferResponseKind.CLICKED), int(OfferResponseKind.REDEEMED)))
# Times within a second of the future limit go the checked way, which compares exactly.
_FUTURE_S = MAX_FUTURE.total_seconds() - 1.0
# Seconds for which (seconds * 10^6 + micros) / 10^6 is what datetime's round trip gives.
_PLAIN_SECONDS = 2**32


def _unknown(message: type[Message], known: str) -> frozenset[str]:
    """Fields of `message` this module does not know. A field added to the contract later
    sends the events that set it the checked way, until this module learns of it."""
    return frozenset(message.DESCRIPTOR.fields_by_name) - frozenset(known.split())


_EVENT_NEW = _unknown(
    profile_pb2.Event,
    "event_id customer time purchase interaction offer_response support_contact life_event "
    "location",
)
_REF_NEW = _unknown(common_pb2.CustomerRef, "kind value")
_PURCHASE_NEW = _unknown(profile_pb2.Purchase, "items amount currency store_id channel")
_ITEM_NEW = _unknown(common_pb2.BasketItem, "product_id category quantity amount")
_INTERACTION_NEW = _unknown(profile_pb2.Interaction, "kind product_id category channel")
_OFFER_NEW = _unknown(profile_pb2.OfferResponse, "kind offer_id decision_event_id channel")
_SUPPORT_NEW = _unknown(profile_pb2.SupportContact, "sentiment topic channel")


def _known_only(message: Message, unknown: frozenset[str]) -> None:
    if any(field.name in unknown for field, _ in message.ListFields()):
        raise _Unusual


class _Unusual(Exception):
    """The event needs the checked path."""


def read_batch(
    messages: Sequence[profile_pb2.Event], now: datetime, max_events: int, default_zone: str
) -> batch.Batch:
    """The checked batch of `messages`; InvalidArgument names the first bad field."""
    if len(messages) <= max_events:
        found = _read(messages, now, default_zone)
        if found is not None:
            return found
    # The checked path, exactly as it always was: every event converted, then checked.
    events = convert.events(messages, now)
    validation.validate_batch(events, now, max_events)
    return batch.of_events(events, default_zone)


def _read(
    messages: Sequence[profile_pb2.Event], now: datetime, default_zone: str
) -> batch.Batch | None:
    now_s = now.timestamp()
    result = batch.Batch()
    homes: dict[tuple[int, str], tuple[str, str | None]] = {}
    for position, message in enumerate(messages):
        customer = message.customer
        kind, value = customer.kind, customer.value
        found = homes.get((kind, value))
        if found is None:
            if kind not in _KINDS or not _plain_identifier(value):
                return None
            found = homes[kind, value] = _home(kind, value)
        event_id = message.event_id
        if not 0 < len(event_id) <= MAX_LABEL_CHARS:
            return None
        try:
            if _EVENT_NEW:
                _known_only(message, _EVENT_NEW)
            if _REF_NEW:
                _known_only(customer, _REF_NEW)
            timed = _updates(message, now, now_s, default_zone)
        except _Unusual:
            checked = _checked(message, now, default_zone)
            if checked is None:
                return None
            timed = checked
        result.add(position, event_id, found[0], found[1], timed)
    return result


def _plain_identifier(value: str) -> bool:
    """What validation.validate_customer accepts (and a bit less)."""
    return (
        0 < len(value) <= MAX_IDENTIFIER_CHARS
        and value == value.strip()
        and "\n" not in value
        and "\r" not in value
        and "\t" not in value
    )


def _home(kind: int, value: str) -> tuple[str, str | None]:
    """The home of an identifier and the identifier field its events record."""
    ref = CustomerRef(IdentifierKind(kind), value)
    return home_id(ref), batch.recorded_identifier(ref)


def _checked(message: profile_pb2.Event, now: datetime, default_zone: str) -> batch.Timed | None:
    """One event the checked way; None when it is invalid (the whole batch then goes that
    way, so errors are reported exactly as they always were)."""
    try:
        event = convert.event(message, "", now)
        validation.validate_event(event, now, "")
    except InvalidArgument:
        return None
    return event.time.timestamp(), aggregates.event_ops(event, default_zone)


def event_time(stamp: profile_pb2.Event, now_s: float) -> float:
    """The event's time as convert gives it (through a datetime, whole microseconds)."""
    if not stamp.HasField("time"):
        return now_s
    seconds, nanos = stamp.time.seconds, stamp.time.nanos
    if 0 <= seconds < _PLAIN_SECONDS and 0 <= nanos < 1_000_000_000 and nanos % 1000 == 0:
        # Exact: both this and datetime.timestamp() are the correctly rounded quotient.
        at = (seconds * 1_000_000 + nanos // 1000) / 1_000_000
    else:
        if not convert.valid_stamp(seconds, nanos):
            raise _Unusual  # the checked path names the field
        try:
            at = datetime.fromtimestamp(seconds + nanos / 1e9, UTC).timestamp()
        except (ValueError, OverflowError, OSError):
            raise _Unusual from None
    if at - now_s > _FUTURE_S:
        raise _Unusual
    return at


def _label(value: str) -> str:
    if len(value) > MAX_LABEL_CHARS:
        raise _Unusual
    return value


def _amount(value: float) -> float:
    if not 0.0 <= value <= MAX_AMOUNT:  # also false for NaN
        raise _Unusual
    return value


def _channel(value: int) -> int:
    if value not in _CHANNELS:
        raise _Unusual
    return value


def _updates(
    message: profile_pb2.Event, now: datetime, now_s: float, default_zone: str
) -> batch.Timed:
    """aggregates.event_ops of the event convert would make, for the common kinds."""
    t = event_time(message, now_s)
    ops: list[Op] = [["d", f"{HOUR}{local_hour_at(t, default_zone)}", 1.0, t]]
    which = message.WhichOneof("payload")
    if which == "purchase":
        p = message.purchase
        if _PURCHASE_NEW:
            _known_only(p, _PURCHASE_NEW)
        items = p.items
        if len(items) > MAX_ITEMS_PER_PURCHASE:
            raise _Unusual
        lines: list[Op] = []
        amounts = []
        for item in items:
            if _ITEM_NEW:
                _known_only(item, _ITEM_NEW)
            product, category = _label(item.product_id), _label(item.category)
            if not (product or category):
                raise _Unusual
            _amount(item.quantity)
            amounts.append(_amount(item.amount))
            if category:
                lines.append(["d", CATEGORY + category, 1.0, t])
            if product:
                lines.append(["d", PRODUCT + product, 1.0, t])
        amount = _amount(p.amount)
        currency = p.currency
        if currency and not validation.CURRENCY.match(currency):
            raise _Unusual
        store = _label(p.store_id)
        _channel(p.channel)
        # As Purchase.total: the amount, else the lines' sum (summed the same way).
        total = amount if amount != 0 else sum(amounts)
        ops += [["m", "P", t], ["i", "N", 1], ["i", "M", fixed_point(total)]]
        ops += lines
        if store:
            ops.append(["d", STORE + store, 1.0, t])
    elif which == "interaction":
        i = message.interaction
        if _INTERACTION_NEW:
            _known_only(i, _INTERACTION_NEW)
        weight = _INTERACTIONS.get(i.kind)
        product, category = _label(i.product_id), _label(i.category)
        if weight is None or not (product or category):
            raise _Unusual
        _channel(i.channel)
        if category:
            ops.append(["d", CATEGORY + category, weight, t])
        if product:
            ops.append(["d", PRODUCT + product, weight, t])
    elif which == "offer_response":
        r = message.offer_response
        if _OFFER_NEW:
            _known_only(r, _OFFER_NEW)
        kind, offer = r.kind, _label(r.offer_id)
        if kind not in _OFFER_KINDS or not offer:
            raise _Unusual
        _label(r.decision_event_id)
        channel = _channel(r.channel)
        ops.append(["o", offer, kind, t])
        if channel:
            if kind == _SHOWN:
                ops.append(["d", f"{IMPRESSIONS}{channel}", 1.0, t])
            elif kind in _ANSWERED:
                ops.append(["d", f"{RESPONSES}{channel}", 1.0, t])
    elif which == "support_contact":
        s = message.support_contact
        if _SUPPORT_NEW:
            _known_only(s, _SUPPORT_NEW)
        sentiment = s.sentiment
        if not -1.0 <= sentiment <= 1.0:  # also false for NaN
            raise _Unusual
        _label(s.topic)
        _channel(s.channel)
        ops += [["d", "S", sentiment, t], ["d", "W", 1.0, t]]
    else:
        raise _Unusual  # life events, location pings, a missing or unknown payload
    return t, ops
