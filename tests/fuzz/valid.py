"""Valid requests, and valid requests with one or two fields set to random or boundary values.

Purely random requests are refused at their first odd field; these reach every later
check and the writes behind them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2
from emma.decision.v1 import decision_pb2
from emma.profile.v1 import profile_pb2
from tests.fuzz.strategies import CUSTOMER_VALUES, NOW_S, STORES, Strategy, _repeated, _value

Desc = descriptor.Descriptor


def _stamp(lo: int = -300 * 86_400, hi: int = 0) -> Strategy:
    return st.builds(Timestamp, seconds=st.integers(NOW_S + lo, NOW_S + hi))


CUSTOMERS = st.builds(
    common_pb2.CustomerRef, kind=st.integers(1, 5), value=st.sampled_from(CUSTOMER_VALUES)
)
LABELS = st.sampled_from(["cheese", "bakery", "coffee", "wine", "emmentaler", "brezel"])
CHANNELS = st.integers(0, 8)
ITEMS = st.builds(
    common_pb2.BasketItem,
    product_id=LABELS,
    category=LABELS,
    quantity=st.floats(0, 10),
    amount=st.floats(-5, 100),
)
PAYLOADS = st.one_of(
    st.builds(
        lambda items, amount, store, channel: {
            "purchase": profile_pb2.Purchase(
                items=items, amount=abs(amount), currency="EUR", store_id=store, channel=channel
            )
        },
        st.lists(ITEMS, max_size=3),
        st.floats(0, 100),
        st.sampled_from(STORES),
        CHANNELS,
    ),
    st.builds(
        lambda kind, label, channel: {
            "interaction": profile_pb2.Interaction(kind=kind, category=label, channel=channel)
        },
        st.integers(1, 3),
        LABELS,
        CHANNELS,
    ),
    st.builds(
        lambda kind, offer, decision, channel, expires: {
            "offer_response": profile_pb2.OfferResponse(
                kind=kind,
                offer_id=offer,
                decision_event_id=decision,
                channel=channel,
                expires_at=expires,
            )
        },
        st.integers(1, 4),
        st.sampled_from(["emmentaler-20", "brezel-bonus"]),
        st.sampled_from(["d-1", "d-2", ""]),
        CHANNELS,
        st.one_of(st.none(), _stamp(0, 30 * 86_400)),
    ),
    st.builds(
        lambda sentiment, channel: {
            "support_contact": profile_pb2.SupportContact(
                sentiment=sentiment, topic="delivery", channel=channel
            )
        },
        st.floats(-1, 1),
        CHANNELS,
    ),
    st.builds(
        lambda kind, time, store: {
            "life_event": profile_pb2.LifeEvent(kind=kind, time=time, store_id=store)
        },
        st.integers(1, 5),
        st.one_of(st.none(), _stamp()),
        st.sampled_from(STORES),
    ),
    st.builds(
        lambda lat, lon: {
            "location": profile_pb2.LocationPing(
                location=common_pb2.GeoPoint(latitude=lat, longitude=lon), accuracy=10.0
            )
        },
        st.floats(-90, 90),
        st.floats(-180, 180),
    ),
)
EVENTS = st.builds(
    lambda event_id, customer, time, payload: profile_pb2.Event(
        event_id=event_id, customer=customer, time=time, **payload
    ),
    st.text("abcdef0123456789-", min_size=1, max_size=12),
    CUSTOMERS,
    st.one_of(st.none(), _stamp()),
    PAYLOADS,
)
PREFERENCES = st.builds(
    profile_pb2.Preferences,
    liked_products=st.lists(st.sampled_from(["emmentaler", "brezel"]), max_size=2),
    liked_categories=st.lists(st.sampled_from(["cheese", "coffee"]), max_size=2),
    disliked_products=st.lists(st.sampled_from(["gouda"]), max_size=1),
    disliked_categories=st.lists(st.sampled_from(["wine"]), max_size=1),
    preferred_channels=st.lists(st.integers(1, 8), max_size=3),
    quiet_hours=st.builds(
        profile_pb2.QuietHours,
        start_minute=st.integers(0, 1439),
        end_minute=st.integers(0, 1439),
        enabled=st.booleans(),
    ),
    language=st.sampled_from(["de-DE", "en", ""]),
)
CONSENTS = st.builds(
    profile_pb2.ConsentChange,
    purpose=st.integers(1, 3),
    channel=CHANNELS,
    status=st.integers(1, 3),
    time=st.one_of(st.none(), _stamp()),
    source=st.sampled_from(["app-settings", "pos-signup", ""]),
)
BASKETS = st.builds(common_pb2.Basket, items=st.lists(ITEMS, max_size=4), currency=st.just("EUR"))
GEO = st.builds(common_pb2.GeoPoint, latitude=st.floats(47.3, 55.0), longitude=st.floats(5.9, 15.0))
TOUCHPOINTS = st.integers(1, 5)

VALID: dict[str, Strategy] = {
    "emma.profile.v1.GetProfileRequest": st.builds(
        profile_pb2.GetProfileRequest, customer=CUSTOMERS
    ),
    "emma.profile.v1.LinkIdentityRequest": st.builds(
        profile_pb2.LinkIdentityRequest, customer=CUSTOMERS, identifier=CUSTOMERS
    ),
    "emma.profile.v1.RecordEventsRequest": st.builds(
        profile_pb2.RecordEventsRequest, events=st.lists(EVENTS, min_size=1, max_size=4)
    ),
    "emma.profile.v1.RecordEventStreamRequest": st.builds(
        profile_pb2.RecordEventStreamRequest, events=st.lists(EVENTS, min_size=1, max_size=3)
    ),
    "emma.profile.v1.UpdatePreferencesRequest": st.builds(
        profile_pb2.UpdatePreferencesRequest, customer=CUSTOMERS, preferences=PREFERENCES
    ),
    "emma.profile.v1.UpdateConsentRequest": st.builds(
        profile_pb2.UpdateConsentRequest,
        customer=CUSTOMERS,
        changes=st.lists(CONSENTS, min_size=1, max_size=3),
    ),
    "emma.profile.v1.ExportCustomerRequest": st.builds(
        profile_pb2.ExportCustomerRequest, customer=CUSTOMERS
    ),
    "emma.profile.v1.EraseCustomerRequest": st.builds(
        profile_pb2.EraseCustomerRequest, customer=CUSTOMERS
    ),
    "emma.context.v1.ResolveRequest": st.builds(
        context_pb2.ResolveRequest,
        time=st.one_of(st.none(), _stamp(-3_000 * 86_400, 3_000 * 86_400)),
        store_id=st.sampled_from([*STORES[:2], ""]),
        location=st.one_of(st.none(), GEO),
        touchpoint=TOUCHPOINTS,
        device=st.sampled_from(["ios", "till"]),
        basket=BASKETS,
    ),
    "emma.context.v1.GetStoreRequest": st.builds(
        context_pb2.GetStoreRequest, store_id=st.sampled_from(STORES[:2])
    ),
    "emma.context.v1.FindNearestStoresRequest": st.builds(
        context_pb2.FindNearestStoresRequest,
        location=GEO,
        limit=st.integers(0, 20),
        max_distance_m=st.floats(0, 1e7),
    ),
    "emma.decision.v1.DecideRequest": st.builds(
        decision_pb2.DecideRequest,
        customer=CUSTOMERS,
        touchpoint=TOUCHPOINTS,
        store_id=st.sampled_from([*STORES[:2], ""]),
        location=st.one_of(st.none(), GEO),
        basket=BASKETS,
        request_time=st.one_of(st.none(), _stamp(-86_400, 3_600)),
        allowed_channels=st.lists(st.integers(1, 8), max_size=2),
        deferred_activation=st.booleans(),
        device=st.sampled_from(["ios", "till"]),
    ),
    "emma.decision.v1.ActivateRequest": st.builds(
        decision_pb2.ActivateRequest,
        event_id=st.sampled_from(["no-such-decision"]),
        time=st.one_of(st.none(), _stamp(-3_600, 0)),
    ),
    "emma.decision.v1.RewardRequest": st.builds(
        decision_pb2.RewardRequest,
        event_id=st.sampled_from(["no-such-decision"]),
        value=st.floats(0, 10),
        time=st.one_of(st.none(), _stamp(-3_600, 0)),
        kind=st.sampled_from(["click", "redeem"]),
        idempotency_key=st.sampled_from(["order-1", ""]),
    ),
}


def _assign(target: Message, field: descriptor.FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        container = getattr(target, field.name)
        del container[:]
        container.extend(value)
    elif field.type == field.TYPE_MESSAGE:
        getattr(target, field.name).CopyFrom(value)
    else:
        setattr(target, field.name, value)


@st.composite
def _mutated(draw: st.DrawFn, valid: Strategy, desc: Desc) -> Message:
    message: Message = draw(valid)
    for _ in range(draw(st.integers(1, 2))):
        target, current = message, desc
        while True:
            field = draw(st.sampled_from(list(current.fields)))
            inner = getattr(target, field.name)
            plain_message = (
                field.type == field.TYPE_MESSAGE
                and not field.message_type.full_name.startswith("google.")
            )
            if plain_message and not field.is_repeated and draw(st.booleans()):
                target, current = inner, field.message_type
                continue
            if plain_message and field.is_repeated and len(inner) and draw(st.booleans()):
                target = inner[draw(st.integers(0, len(inner) - 1))]
                current = field.message_type
                continue
            if field.is_repeated:
                value = draw(_repeated(field, 0, True))
            else:
                value = draw(_value(field, 0, True))
            _assign(target, field, value)
            break
    return message


def near_valid(cls: type[Message]) -> Strategy:
    """Valid requests of type `cls` (a quarter) and valid ones with one or two fields changed."""
    valid = VALID[cls.DESCRIPTOR.full_name]
    return st.one_of(
        valid,
        _mutated(valid, cls.DESCRIPTOR),
        _mutated(valid, cls.DESCRIPTOR),
        _mutated(valid, cls.DESCRIPTOR),
    )
