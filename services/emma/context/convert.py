"""Conversions between the context protos and the domain objects."""

from __future__ import annotations

from datetime import UTC

from emma.common.basket import BasketLine
from emma.common.v1 import common_pb2
from emma.context.calendar import Holiday
from emma.context.features import Feature
from emma.context.resolver import ContextRequest, ResolvedContext
from emma.context.stores import NearbyStore, Store
from emma.context.v1 import context_pb2
from emma.runtime.errors import InvalidArgument

_DAYPARTS = {
    "morning": context_pb2.DAYPART_MORNING,
    "lunch": context_pb2.DAYPART_LUNCH,
    "afternoon": context_pb2.DAYPART_AFTERNOON,
    "evening": context_pb2.DAYPART_EVENING,
    "night": context_pb2.DAYPART_NIGHT,
}
_SEASONS = {
    "spring": context_pb2.SEASON_SPRING,
    "summer": context_pb2.SEASON_SUMMER,
    "autumn": context_pb2.SEASON_AUTUMN,
    "winter": context_pb2.SEASON_WINTER,
}
# Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def touchpoint_name(value: int) -> str:
    """ "pos" for TOUCHPOINT_POS; "unknown" for values newer than this code."""
    try:
        return common_pb2.Touchpoint.Name(value).removeprefix("TOUCHPOINT_").lower()  # type: ignore[arg-type]
    except ValueError:
        return "unknown"


def context_request(request: context_pb2.ResolveRequest) -> ContextRequest:
    instant = None
    if request.HasField("time"):
        stamp = request.time
        if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 10**9):
            raise InvalidArgument("time", "not a valid timestamp")
        instant = stamp.ToDatetime(tzinfo=UTC)
    location = None
    if request.HasField("location"):
        location = (request.location.latitude, request.location.longitude)
    return ContextRequest(
        instant=instant,
        store_id=request.store_id,
        location=location,
        country=request.country,
        region=request.region,
        time_zone=request.time_zone,
        touchpoint=touchpoint_name(request.touchpoint),
        device=request.device,
        basket=tuple(
            BasketLine(item.product_id, item.category, item.quantity, item.amount)
            for item in request.basket.items
        ),
    )


def store_proto(store: Store) -> context_pb2.Store:
    return context_pb2.Store(
        store_id=store.store_id,
        name=store.name,
        location=common_pb2.GeoPoint(latitude=store.latitude, longitude=store.longitude),
        country=store.country,
        region=store.region,
        time_zone=store.time_zone,
        geofence_m=store.geofence_m,
        opening_hours=[
            context_pb2.OpeningHours(
                weekday=hours.weekday,
                open_minute=hours.open_minute,
                close_minute=hours.close_minute,
            )
            for hours in store.opening_hours
        ],
        attributes=dict(store.attributes),
    )


def nearby_proto(near: NearbyStore) -> context_pb2.NearbyStore:
    return context_pb2.NearbyStore(store=store_proto(near.store), distance_m=near.distance_m)


def feature_proto(feature: Feature) -> context_pb2.Feature:
    if isinstance(feature.value, str):
        return context_pb2.Feature(name=feature.name, text=feature.value)
    return context_pb2.Feature(name=feature.name, number=feature.value)


def _holiday(holiday: Holiday | None) -> context_pb2.Holiday | None:
    if holiday is None:
        return None
    return context_pb2.Holiday(date=holiday.day.isoformat(), name=holiday.name)


def context_proto(
    context: ResolvedContext,
    touchpoint: int,
    signals: list[Feature],
    features: list[Feature],
    skipped: list[str],
) -> context_pb2.Context:
    """The Context message; `touchpoint` is echoed as the caller sent it."""
    return context_pb2.Context(
        local_time=context.local_time.isoformat(timespec="seconds"),
        time_zone=context.time_zone,
        daypart=_DAYPARTS.get(context.daypart, context_pb2.DAYPART_UNSPECIFIED),
        weekday=context.weekday,
        weekend=context.weekend,
        season=_SEASONS[context.season],
        southern_hemisphere=context.southern_hemisphere,
        country=context.country,
        region=context.region,
        holiday=_holiday(context.holiday),
        next_holiday=_holiday(context.next_holiday),
        days_to_next_holiday=context.days_to_next_holiday,
        retail_seasons=context.retail_seasons,
        store=store_proto(context.store) if context.store else None,
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
        signals=[feature_proto(f) for f in signals],
        features=[feature_proto(f) for f in features],
        skipped_providers=skipped,
    )
