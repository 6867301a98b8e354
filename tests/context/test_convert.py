"""The answer assembled from cached wire fragments equals the message built field by field."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emma.common.v1 import common_pb2
from emma.context import convert
from emma.context.config import ContextConfig
from emma.context.features import Feature, context_features, feature_groups
from emma.context.resolver import ResolvedContext
from emma.context.server import build_providers, build_resolver
from emma.context.v1 import context_pb2
from emma.runtime.config import load_config

CONFIG = load_config(ContextConfig, [], {})
RESOLVER = build_resolver(CONFIG)
PROVIDERS = build_providers(CONFIG)
STORE_IDS = [store.store_id for store in RESOLVER.stores]
DAYPARTS = {"morning": 1, "lunch": 2, "afternoon": 3, "evening": 4, "night": 5}
SEASONS = {"spring": 1, "summer": 2, "autumn": 3, "winter": 4}


def field_by_field(
    context: ResolvedContext, touchpoint: int, signals: Sequence[Feature], skipped: list[str]
) -> context_pb2.ResolveResponse:
    """The answer as a plain protobuf builder would make it."""
    message = context_pb2.Context(
        local_time=context.local_time.isoformat(timespec="seconds"),
        time_zone=context.time_zone,
        daypart=DAYPARTS[context.daypart],  # type: ignore[arg-type]
        weekday=context.weekday,
        weekend=context.weekend,
        season=SEASONS[context.season],  # type: ignore[arg-type]
        southern_hemisphere=context.southern_hemisphere,
        country=context.country,
        region=context.region,
        days_to_next_holiday=context.days_to_next_holiday,
        retail_seasons=context.retail_seasons,
        store_distance_m=context.store_distance_m or 0.0,
        in_store=context.in_store,
        store_open=context.store_open,
        touchpoint=touchpoint,  # type: ignore[arg-type]
        device=context.device,
        basket=context_pb2.BasketSummary(
            item_count=context.basket.item_count,
            value=context.basket.value,
            categories=context.basket.categories,
        ),
        signals=[convert.feature_proto(f) for f in signals],
        features=[convert.feature_proto(f) for f in context_features(context, signals)],
        skipped_providers=skipped,
    )
    if context.store is not None:
        message.store.CopyFrom(convert.store_proto(context.store))
    for field, holiday in (("holiday", context.holiday), ("next_holiday", context.next_holiday)):
        if holiday is not None:
            getattr(message, field).CopyFrom(
                context_pb2.Holiday(date=holiday.day.isoformat(), name=holiday.name)
            )
    return context_pb2.ResolveResponse(context=message)


REQUESTS = st.builds(
    lambda store, location, instant, basket, device, touchpoint: (
        store,
        location,
        instant,
        basket,
        device,
        touchpoint,
    ),
    st.sampled_from(["", *STORE_IDS]),
    st.none() | st.tuples(st.floats(-89, 89), st.floats(-179, 179)),
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
    st.lists(st.tuples(st.sampled_from(["", "wine", "cheese"]), st.floats(-5, 50)), max_size=3),
    st.sampled_from(["", "till", "ios"]),
    st.sampled_from([0, common_pb2.TOUCHPOINT_POS, common_pb2.TOUCHPOINT_APP]),
)


@settings(max_examples=200, deadline=None)
@given(case=REQUESTS, skipped=st.sampled_from([[], ["weather"]]))
def test_the_assembled_answer_equals_the_field_by_field_one(
    case: tuple[str, tuple[float, float] | None, datetime, list[tuple[str, float]], str, int],
    skipped: list[str],
) -> None:
    store_id, location, instant, lines, device, touchpoint = case
    request = context_pb2.ResolveRequest(
        store_id=store_id,
        device=device,
        touchpoint=touchpoint,  # type: ignore[arg-type]
    )
    request.time.FromDatetime(instant)
    if location is not None:
        request.location.latitude, request.location.longitude = location
    for category, amount in lines:
        request.basket.items.add(product_id="p", category=category, quantity=1, amount=amount)
    resolved = RESOLVER.resolve(convert.context_request(request))
    signals = PROVIDERS[0].signals_now(resolved)  # type: ignore[attr-defined]
    groups = feature_groups(resolved, signals)
    answer = convert.resolve_response(resolved, touchpoint, signals, groups, skipped)
    assert answer == field_by_field(resolved, touchpoint, signals, skipped)


@pytest.mark.parametrize("hours", [0, 9, 13, 19, 23])
def test_the_same_hour_at_a_store_reuses_its_fragments(hours: int) -> None:
    instant = datetime(2026, 12, 24, tzinfo=UTC) + timedelta(hours=hours)
    request = context_pb2.ResolveRequest(store_id=STORE_IDS[0])
    request.time.FromDatetime(instant)
    first = RESOLVER.resolve(convert.context_request(request))
    request.time.FromDatetime(instant + timedelta(seconds=30))
    second = RESOLVER.resolve(convert.context_request(request))
    assert feature_groups(first)[0] is feature_groups(second)[0]  # the clock group
    assert [g.fragment for g in feature_groups(first)] == [
        g.fragment for g in feature_groups(second)
    ]
