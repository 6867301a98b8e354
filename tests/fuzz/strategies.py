"""Hypothesis strategies for any request message, built from its protobuf descriptor.

Every field gets random and boundary values of its type: empty, huge and odd strings,
unknown enum numbers, NaN and infinite floats, int32/int64 extremes, timestamps and
durations outside their range, and now and then a huge repeated field. Fields whose
meaning the services check (customer references, stores, zones, currencies, ...) draw
from valid values most of the time, so generated requests reach past the first check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import descriptor, message_factory
from google.protobuf.message import Message
from hypothesis import strategies as st

FieldDescriptor = descriptor.FieldDescriptor
Strategy = st.SearchStrategy[Any]

NOW_S = int(time.time())
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# Timestamp's documented range is 0001-01-01 to 9999-12-31; the services take less.
TIMESTAMP_MIN_S, TIMESTAMP_MAX_S = -62_135_596_800, 253_402_300_799

ODD_TEXT = [
    "",
    " ",
    "  padded  ",
    "a",
    "0",
    "-1",
    "x" * 128,
    "x" * 129,
    "x" * 256,
    "x" * 257,
    "tab\there",
    "line\nbreak",
    "cr\rhere",
    "nul\x00byte",
    "pipe|colon:space here",
    "quote\"'back\\slash",
    "ümlaut-Straße",
    "😀🧀",
    "\u202eright-to-left",
    "\ufeffbom",
    "\U0010ffff",
    "%s%n{0}",
    "../../etc/passwd",
    "{emma:c:1}:w",
    "*",
    "null",
    "NaN",
]
HUGE_TEXT = st.sampled_from([1_000, 10_000, 100_000, 1_000_000]).map(lambda n: "x" * n)


def weighted(*choices: tuple[int, Strategy]) -> Strategy:
    """One of the strategies, each drawn with its weight (hypothesis' one_of is uniform)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.one_of(*table)


def text(huge: bool, *valid: str) -> Strategy:
    """Mostly `valid` (when given), else odd, random or (when `huge`, rarely) huge strings."""
    odd = st.one_of(
        st.sampled_from(ODD_TEXT),
        st.text(max_size=24),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8),
    )
    rare = HUGE_TEXT if huge else st.sampled_from(ODD_TEXT)
    if not valid:
        return weighted((9, odd), (1, rare))
    return weighted((6, st.sampled_from(valid)), (3, odd), (1, rare))


def floats(*typical: float) -> Strategy:
    boundary = st.sampled_from(
        [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1e-308,
            5e-324,
            1.7976931348623157e308,
            -1.7976931348623157e308,
            float("nan"),
            float("inf"),
            float("-inf"),
        ]
    )
    if typical:
        return st.one_of(st.sampled_from(typical), st.sampled_from(typical), boundary, st.floats())
    return st.one_of(boundary, st.floats(), st.floats(-1e6, 1e6))


def ints(lo: int, hi: int, *typical: int) -> Strategy:
    boundary = st.sampled_from(sorted({lo, hi, 0, 1, -1 if lo < 0 else 0, lo + 1, hi - 1}))
    choices: list[Strategy] = [boundary, st.integers(lo, hi)]
    if typical:
        choices += [st.sampled_from(typical), st.sampled_from(typical)]
    return st.one_of(*choices)


def enum(field: FieldDescriptor) -> Strategy:
    """Defined values (non-zero ones twice as often), zero and unknown numbers."""
    defined = [v.number for v in field.enum_type.values]
    known = [n for n in defined if n != 0] or defined
    return st.one_of(
        st.sampled_from(known), st.sampled_from(known), st.sampled_from(defined), ints(*INT32)
    )


def timestamps() -> Strategy:
    seconds = st.one_of(
        st.integers(NOW_S - 400 * 86_400, NOW_S + 3_600),
        st.integers(NOW_S - 400 * 86_400, NOW_S + 3_600),
        st.sampled_from(
            [
                0,
                -1,
                TIMESTAMP_MIN_S,
                TIMESTAMP_MAX_S,
                TIMESTAMP_MIN_S - 1,
                TIMESTAMP_MAX_S + 1,
                -2_208_988_800,
                4_133_980_800,
                NOW_S + 86_400,
                NOW_S + 86_401,
                NOW_S + 90_000,
            ]
        ),
        ints(*INT64),
    )
    nanos = st.one_of(
        st.just(0),
        st.just(0),
        st.integers(0, 999_999_999),
        st.sampled_from([-1, 10**9]),
        ints(*INT32),
    )
    return st.builds(_message("google.protobuf.Timestamp"), seconds=seconds, nanos=nanos)


def durations() -> Strategy:
    seconds = st.one_of(
        st.integers(0, 5), ints(*INT64), st.sampled_from([315_576_000_000, -315_576_000_000])
    )
    nanos = st.one_of(st.integers(0, 999_999_999), st.integers(-999_999_999, 0), ints(*INT32))
    return st.builds(_message("google.protobuf.Duration"), seconds=seconds, nanos=nanos)


_BY_NAME: dict[str, type[Message]] = {}


def _message(full_name: str) -> Callable[..., Message]:
    return _BY_NAME[full_name]


def _register(desc: descriptor.Descriptor) -> type[Message]:
    cls = message_factory.GetMessageClass(desc)
    _BY_NAME[desc.full_name] = cls
    return cls


# Field overrides by full field name, so requests often get past their first check.
CUSTOMER_VALUES = ("1001", "4711", "card-0001", "app-user-7", "c0ffee" * 10 + "c0ff", "d-9")
STORES = ("berlin-mitte", "muenchen-marienplatz", "hamburg-hbf", "no-such-store")
PREFERENCE_PATHS = (
    "liked_products",
    "liked_categories",
    "disliked_products",
    "disliked_categories",
    "preferred_channels",
    "quiet_hours",
    "language",
)
FIELD_OVERRIDES: Mapping[str, Callable[[bool], Strategy]] = {
    "emma.common.v1.CustomerRef.value": lambda huge: text(huge, *CUSTOMER_VALUES),
    "emma.common.v1.GeoPoint.latitude": lambda huge: floats(
        52.52, 48.137, -33.87, 90.0, -90.0, 90.1
    ),
    "emma.common.v1.GeoPoint.longitude": lambda huge: floats(13.405, 11.575, 151.2, 180.0, -180.1),
    "emma.common.v1.BasketItem.product_id": lambda huge: text(huge, "emmentaler", "brezel", "p1"),
    "emma.common.v1.BasketItem.category": lambda huge: text(
        huge, "cheese", "bakery", "coffee", "wine"
    ),
    "emma.common.v1.BasketItem.quantity": lambda huge: floats(1.0, 2.0, 0.4, -1.0),
    "emma.common.v1.BasketItem.amount": lambda huge: floats(4.99, 1.40, 0.0, -0.25),
    "emma.common.v1.Basket.currency": lambda huge: text(huge, "EUR", "USD", "eur", "EURO"),
    "emma.profile.v1.Event.event_id": lambda huge: text(
        huge, "e-1", "e-2", "e-3", "evt-" + "9" * 30
    ),
    "emma.profile.v1.Purchase.currency": lambda huge: text(huge, "EUR", "CHF", "eur", "E"),
    "emma.profile.v1.Purchase.store_id": lambda huge: text(huge, *STORES),
    "emma.profile.v1.LifeEvent.store_id": lambda huge: text(huge, *STORES),
    "emma.profile.v1.OfferResponse.offer_id": lambda huge: text(
        huge, "emmentaler-20", "brezel-bonus"
    ),
    "emma.profile.v1.OfferResponse.decision_event_id": lambda huge: text(huge, "d-1", "d-2", ""),
    "emma.profile.v1.SupportContact.sentiment": lambda huge: floats(-1.0, 0.5, 1.0, 1.5),
    "emma.profile.v1.Preferences.language": lambda huge: text(huge, "de-DE", "en", "de_DE", "x"),
    "emma.profile.v1.QuietHours.start_minute": lambda huge: ints(*INT32, 0, 600, 1439, 1440),
    "emma.profile.v1.QuietHours.end_minute": lambda huge: ints(*INT32, 0, 420, 1439, 1440),
    "emma.profile.v1.ConsentChange.source": lambda huge: text(huge, "app-settings", "pos-signup"),
    "google.protobuf.FieldMask.paths": lambda huge: text(huge, *PREFERENCE_PATHS, "Language"),
    "emma.context.v1.ResolveRequest.store_id": lambda huge: text(huge, *STORES, ""),
    "emma.context.v1.ResolveRequest.country": lambda huge: text(
        huge, "DE", "de", "AT", "US", "XX", ""
    ),
    "emma.context.v1.ResolveRequest.region": lambda huge: text(huge, "BY", "BE", "by", "ZZ", ""),
    "emma.context.v1.ResolveRequest.time_zone": lambda huge: text(
        huge, "Europe/Berlin", "America/New_York", "UTC", "Etc/GMT+14", "Mars/Olympus", "", "/"
    ),
    "emma.context.v1.ResolveRequest.device": lambda huge: text(huge, "ios", "till", ""),
    "emma.context.v1.GetStoreRequest.store_id": lambda huge: text(huge, *STORES),
    "emma.context.v1.FindNearestStoresRequest.limit": lambda huge: ints(*INT32, 1, 5, 100),
    "emma.context.v1.FindNearestStoresRequest.max_distance_m": lambda huge: floats(1000.0, 0.0),
    "emma.decision.v1.DecideRequest.store_id": lambda huge: text(huge, *STORES, ""),
    "emma.decision.v1.DecideRequest.device": lambda huge: text(huge, "ios", "till", ""),
    "emma.decision.v1.DecideRequest.request_id": lambda huge: text(huge, "r-1", ""),
    "emma.decision.v1.Moment.rule": lambda huge: text(huge, "geofence-entry", "birthday"),
    "emma.decision.v1.Moment.kind": lambda huge: text(huge, "geofence", "life_event"),
    "emma.decision.v1.Moment.offer_ids": lambda huge: text(huge, "emmentaler-20", "brezel-bonus"),
    "emma.decision.v1.Moment.categories": lambda huge: text(huge, "cheese", "bakery"),
    "emma.decision.v1.ActivateRequest.event_id": lambda huge: text(huge, "no-such-decision", ""),
    "emma.decision.v1.RewardRequest.event_id": lambda huge: text(huge, "no-such-decision", ""),
    "emma.decision.v1.RewardRequest.value": lambda huge: floats(1.0, 0.0, 2.5),
    "emma.decision.v1.RewardRequest.kind": lambda huge: text(
        huge, "click", "redeem", "purchase", ""
    ),
    "emma.decision.v1.RewardRequest.idempotency_key": lambda huge: text(
        huge, "order-1", "", "k" * 257
    ),
}
# Repeated fields that may be huge: (largest typical size, huge sizes).
HUGE_REPEATED: Mapping[str, tuple[int, ...]] = {
    "emma.common.v1.Basket.items": (501, 2_000, 20_000),
    "emma.profile.v1.Purchase.items": (500, 501, 5_000),
    "emma.profile.v1.RecordEventsRequest.events": (1_000, 1_001, 3_000),
    "emma.profile.v1.RecordEventStreamRequest.events": (1_000, 1_001),
    "emma.profile.v1.UpdateConsentRequest.changes": (100, 101, 1_000),
    "emma.profile.v1.Preferences.liked_products": (200, 201, 10_000),
    "emma.profile.v1.Preferences.disliked_categories": (201, 10_000),
    "emma.profile.v1.Preferences.preferred_channels": (1_000, 100_000),
    "emma.decision.v1.DecideRequest.allowed_channels": (100, 100_000),
    "emma.decision.v1.Moment.offer_ids": (1_000, 50_000),
    "google.protobuf.FieldMask.paths": (1_000,),
}
WELL_KNOWN: Mapping[str, Callable[[], Strategy]] = {
    "google.protobuf.Timestamp": timestamps,
    "google.protobuf.Duration": durations,
}


def _scalar(field: FieldDescriptor, huge: bool) -> Strategy:
    override = FIELD_OVERRIDES.get(field.full_name)
    if override is not None:
        return override(huge)
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text(huge)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        return enum(field)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return floats()
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32):
        return ints(*INT32)
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        return ints(*INT64)
    raise NotImplementedError(f"no strategy for {field.full_name}")


def _value(field: FieldDescriptor, depth: int, huge: bool) -> Strategy:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1, huge)
    return _scalar(field, huge)


def _repeated(field: FieldDescriptor, depth: int, huge: bool) -> Strategy:
    # Elements never hold huge parts themselves: a request must not be the product of
    # several huge parts (a huge list of huge strings), which only measures the size limit.
    element = _value(field, depth, False)
    small = st.lists(element, max_size=4)
    sizes = HUGE_REPEATED.get(field.full_name)
    if sizes is None or not huge:
        return small
    # A huge list repeats one or two generated elements: generating thousands is slow.
    many = st.tuples(st.lists(element, min_size=1, max_size=2), st.sampled_from(sizes)).map(
        lambda pair: (pair[0] * pair[1])[: pair[1]]
    )
    return weighted((19, small), (1, many))


def messages(desc: descriptor.Descriptor, depth: int = 0, huge: bool = True) -> Strategy:
    """Messages of type `desc`: each field unset, or set to a random or boundary value;
    `huge` allows huge strings and lists in it."""
    special = WELL_KNOWN.get(desc.full_name)
    cls = _register(desc)
    if special is not None:
        return special()
    if depth > 8:
        return st.just(cls())
    oneof_fields = {f.name for o in desc.oneofs for f in o.fields}
    optional: dict[str, Strategy] = {}
    for field in desc.fields:
        if field.name in oneof_fields:
            continue
        if field.is_repeated:
            optional[field.name] = _repeated(field, depth, huge)
        else:
            optional[field.name] = st.one_of(st.none(), _value(field, depth, huge))
    oneofs = [
        st.one_of(
            st.none(), *[st.tuples(st.just(f.name), _value(f, depth, huge)) for f in oneof.fields]
        )
        for oneof in desc.oneofs
    ]

    def build(values: dict[str, Any], chosen: tuple[Any, ...]) -> Message:
        fields = {name: value for name, value in values.items() if value is not None}
        for pick in chosen:
            if pick is not None:
                fields[pick[0]] = pick[1]
        return cls(**fields)

    return st.builds(build, st.fixed_dictionaries(optional), st.tuples(*oneofs))


def requests(cls: type[Message]) -> Strategy:
    """Requests of type `cls`."""
    return messages(cls.DESCRIPTOR)
