"""The direct reading of RecordEvents protos makes what the checked path makes, or defers to it."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from bench.profile import EventMaker, batches, shoppers
from emma.common.v1 import common_pb2
from emma.profile import batch, convert, intake, validation
from emma.profile.model import CustomerRef, IdentifierKind, RecordResult
from emma.profile.store import ProfileStore
from emma.profile.v1 import profile_pb2 as pb
from emma.runtime.errors import InvalidArgument

NOW = datetime(2025, 6, 15, 10, 0, 0, 250_000, tzinfo=UTC)
ZONE = "Europe/Berlin"
HALF_LIFE_S = 30 * 86_400.0
MAX_EVENTS = 1000


def checked(messages: list[pb.Event]) -> batch.Batch:
    """The checked path alone: convert, validate, then the domain events' updates."""
    events = convert.events(messages, NOW)
    validation.validate_batch(events, NOW, MAX_EVENTS)
    return batch.of_events(events, ZONE)


def same(a: batch.Batch, b: batch.Batch) -> None:
    assert a.repeats == b.repeats
    assert list(a.customers) == list(b.customers)
    for home, group in a.customers.items():
        other = b.customers[home]
        assert (group.positions, group.seen, group.identifiers) == (
            other.positions,
            other.seen,
            other.identifiers,
        )
        assert group.updates == other.updates
        now_s = NOW.timestamp()
        assert group.payload(now_s, HALF_LIFE_S) == other.payload(now_s, HALF_LIFE_S)


def stamp(time: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(time)
    return result


def ref(value: str, kind: int = common_pb2.IDENTIFIER_KIND_CUSTOMER_ID) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(kind=kind, value=value)  # type: ignore[arg-type]


def buy(event_id: str = "e1", customer: str = "42") -> pb.Event:
    return pb.Event(
        event_id=event_id,
        customer=ref(customer),
        time=stamp(NOW - timedelta(hours=3)),
        purchase=pb.Purchase(
            items=[common_pb2.BasketItem(product_id="gouda", category="cheese", amount=3.5)],
            currency="EUR",
            store_id="koeln",
            channel=common_pb2.CHANNEL_RECEIPT,
        ),
    )


def test_synthetic_feeds_read_the_same_both_ways() -> None:
    rng = random.Random(7)
    maker = EventMaker(rng, NOW)
    pool = shoppers("s", 120, rng)
    for per_batch in (10, 100):
        for request in batches(maker, pool, 1000, per_batch):
            messages = list(request.events)
            same(intake.read_batch(messages, NOW, MAX_EVENTS, ZONE), checked(messages))


def test_every_kind_identifier_and_oddity_reads_the_same_both_ways() -> None:
    card = ref("card-1", common_pb2.IDENTIFIER_KIND_LOYALTY_CARD)
    nanos = Timestamp(seconds=1_749_970_000, nanos=123_456_789)  # sub-microsecond time
    events = [
        buy("p1"),
        buy("p1"),  # the same id again: counts once
        pb.Event(event_id="p2", customer=card, time=nanos, purchase=pb.Purchase(amount=9.0)),
        pb.Event(
            event_id="i1",
            customer=ref("~0123456789abcdef01234567"),  # a derived id: no identifier field
            interaction=pb.Interaction(kind=pb.INTERACTION_KIND_CLICK, category="wine"),
        ),
        pb.Event(
            event_id="o1",
            customer=card,
            time=stamp(NOW),
            offer_response=pb.OfferResponse(
                kind=pb.OFFER_RESPONSE_KIND_SHOWN, offer_id="o", channel=common_pb2.CHANNEL_PUSH
            ),
        ),
        pb.Event(
            event_id="o2",
            customer=card,
            time=stamp(NOW + timedelta(hours=2)),  # drift into the future
            offer_response=pb.OfferResponse(
                kind=pb.OFFER_RESPONSE_KIND_REDEEMED, offer_id="o", channel=common_pb2.CHANNEL_PUSH
            ),
        ),
        pb.Event(
            event_id="s1",
            customer=ref("42"),
            time=stamp(NOW - timedelta(days=400)),
            support_contact=pb.SupportContact(sentiment=-0.5),
        ),
        pb.Event(
            event_id="l1",
            customer=ref("42"),
            time=stamp(NOW),
            life_event=pb.LifeEvent(kind=pb.LIFE_EVENT_KIND_MOVED, store_id="bonn"),
        ),
        pb.Event(
            event_id="g1",
            customer=ref("42"),
            time=Timestamp(seconds=-86_400),  # before 1970
            location=pb.LocationPing(accuracy=5.0),
        ),
        pb.Event(
            event_id="x1",
            customer=ref("42"),
            time=stamp(NOW + timedelta(days=1) - timedelta(microseconds=1)),  # at the limit
            interaction=pb.Interaction(kind=pb.INTERACTION_KIND_VIEW, product_id="p"),
        ),
    ]
    events[4].offer_response.expires_at.CopyFrom(stamp(NOW + timedelta(days=3)))
    same(intake.read_batch(events, NOW, MAX_EVENTS, ZONE), checked(events))


def _with(change: Callable[[pb.Event], None]) -> pb.Event:
    event = buy("bad")
    change(event)
    return event


def _set(path: str, value: object) -> Callable[[pb.Event], None]:
    def change(event: pb.Event) -> None:
        *parents, name = path.split(".")
        target: object = event
        for part in parents:
            target = target[int(part)] if part.isdigit() else getattr(target, part)  # type: ignore[index]
        setattr(target, name, value)

    return change


BAD = {
    "no event id": _set("event_id", ""),
    "long event id": _set("event_id", "x" * 200),
    "no customer kind": _set("customer.kind", 0),
    "unknown customer kind": _set("customer.kind", 99),
    "blank customer": _set("customer.value", "  "),
    "tab in customer": _set("customer.value", "a\tb"),
    "far future": lambda e: e.time.CopyFrom(stamp(NOW + timedelta(days=2))),
    "out of range time": lambda e: e.time.CopyFrom(Timestamp(seconds=10**12)),
    "negative quantity": _set("purchase.items.0.quantity", -1.0),
    "NaN amount": _set("purchase.items.0.amount", math.nan),
    "infinite total": _set("purchase.amount", math.inf),
    "empty line": lambda e: e.purchase.items.add(),
    "bad currency": _set("purchase.currency", "euro"),
    "unknown channel": _set("purchase.channel", 42),
    "long store": _set("purchase.store_id", "s" * 200),
    "no payload": lambda e: e.ClearField("purchase"),
    "no interaction kind": lambda e: e.interaction.CopyFrom(pb.Interaction(category="c")),
    "offer without id": lambda e: e.offer_response.CopyFrom(
        pb.OfferResponse(kind=pb.OFFER_RESPONSE_KIND_SHOWN)
    ),
    "sentiment above one": lambda e: e.support_contact.CopyFrom(pb.SupportContact(sentiment=1.5)),
    "NaN sentiment": lambda e: e.support_contact.CopyFrom(pb.SupportContact(sentiment=math.nan)),
    "life event without kind": lambda e: e.life_event.CopyFrom(pb.LifeEvent()),
    "latitude out of range": lambda e: e.location.CopyFrom(
        pb.LocationPing(location=common_pb2.GeoPoint(latitude=91.0))
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_event_gets_the_checked_paths_error(name: str) -> None:
    messages = [buy("ok-1"), _with(BAD[name]), buy("ok-2")]
    with pytest.raises(InvalidArgument) as expected:
        checked(messages)
    with pytest.raises(InvalidArgument) as got:
        intake.read_batch(messages, NOW, MAX_EVENTS, ZONE)
    assert str(got.value) == str(expected.value)
    assert str(got.value).startswith("events[1]")


def test_an_oversized_batch_is_refused_as_before() -> None:
    messages = [buy(f"e{i}") for i in range(5)]
    with pytest.raises(InvalidArgument, match="events: at most 4 per batch"):
        intake.read_batch(messages, NOW, 4, ZONE)


def test_times_read_as_a_datetime_round_trip_gives_them() -> None:
    rng = random.Random(3)
    for _ in range(20_000):
        seconds = rng.randrange(0, 2**32)
        nanos = rng.randrange(0, 1_000_000) * 1000
        message = pb.Event(time=Timestamp(seconds=seconds, nanos=nanos))
        expected = datetime.fromtimestamp(seconds + nanos / 1e9, UTC).timestamp()
        assert intake.event_time(message, 2.0**33) == expected


async def test_a_recorded_batch_names_the_events_each_profile_took(store: ProfileStore) -> None:
    def read(messages: list[pb.Event]) -> batch.Batch:
        return intake.read_batch(messages, NOW, MAX_EVENTS, ZONE)

    first = await store.record_batch(read([buy("a"), buy("b"), buy("c", "7")]), NOW)
    assert first.result == RecordResult(3, 0)
    assert sorted(first.applied, key=lambda a: a.customer_id) == [
        batch.Applied("42", (0, 1)),
        batch.Applied("7", (2,)),
    ]
    # Replays are left out; an event by a linked card lands on (and names) its profile.
    card = CustomerRef(IdentifierKind.LOYALTY_CARD, "card-9")
    await store.link_identity(CustomerRef(IdentifierKind.CUSTOMER_ID, "42"), card, NOW)
    by_card = buy("d")
    by_card.customer.CopyFrom(ref("card-9", common_pb2.IDENTIFIER_KIND_LOYALTY_CARD))
    again = await store.record_batch(read([buy("b"), by_card, buy("c", "7"), buy("e")]), NOW)
    assert again.result == RecordResult(2, 2)
    assert sorted(again.applied, key=lambda a: a.positions) == [
        batch.Applied("42", (1,)),
        batch.Applied("42", (3,)),
    ]
