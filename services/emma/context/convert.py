"""Conversions between the context protos and the domain objects."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from emma.common.v1 import common_pb2
from emma.context import wire
from emma.context.calendar import Holiday
from emma.context.features import Feature, FeatureGroup, recurs
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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOUCHPOINTS: dict[int, str] = {
    int(value): name.removeprefix("TOUCHPOINT_").lower()
    for name, value in common_pb2.Touchpoint.items()
}


def touchpoint_name(value: int) -> str:
    """ "pos" for TOUCHPOINT_POS; "unknown" for values newer than this code."""
    return _TOUCHPOINTS.get(value, "unknown")


def context_request(request: context_pb2.ResolveRequest) -> ContextRequest:
    instant = None
    if request.HasField("time"):
        stamp = request.time
        if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 10**9):
            raise InvalidArgument("time", "not a valid timestamp")
        # What Timestamp.ToDatetime does, without its generality (it runs per request).
        instant = _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)
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
        basket=request.basket.items,
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
        open_on_public_holidays=store.open_on_public_holidays,
        holiday_categories=store.holiday_categories,
    )


def nearby_proto(near: NearbyStore) -> context_pb2.NearbyStore:
    return context_pb2.NearbyStore(store=store_proto(near.store), distance_m=near.distance_m)


def feature_proto(feature: Feature) -> context_pb2.Feature:
    return wire.feature_message(feature.name, feature.value)


# --- the Context message, from cached wire-format fragments ------------------------------------
#
# Stores, holidays and most feature groups repeat from request to request, and building
# their messages field by field cost more than everything else Resolve does. Each is
# serialised once, as a fragment of a Context message holding only it; parsing the
# concatenated fragments into a Context appends the repeated fields in order (protobuf's
# merge rule), in C.
_FRAGMENTS = 65_536


_encode = wire.features_fragment


@functools.lru_cache(maxsize=_FRAGMENTS)
def _recurring(features: tuple[Feature, ...], signals: bool) -> bytes:
    return _encode(features, signals)


def _group_fragment(group: FeatureGroup) -> bytes:
    if group.fragment:
        return group.fragment
    if group.recurring:
        return _recurring(group.features, False)
    if len(group.features) == 1:
        name, value = group.features[0]
        if not isinstance(value, str):
            return wire.number_fragment(name, value)  # a basket's value, a distance
    return _encode(group.features)


def _signals_fragment(signals: Sequence[Feature]) -> bytes:
    # Signals from files recur (a month's typical weather); live ones may not.
    return _recurring(tuple(signals), True) if recurs(signals) else _encode(signals, True)


@functools.lru_cache(maxsize=_FRAGMENTS)
def _calendar_fragment(
    time_zone: str,
    daypart: str,
    weekday: int,
    weekend: bool,
    season: str,
    southern: bool,
    country: str,
    region: str,
    days_to_next_holiday: int,
    retail_seasons: tuple[str, ...],
) -> bytes:
    """The scalars that hold for an hour at a place; a few thousand a day recur."""
    return context_pb2.Context(
        time_zone=time_zone,
        daypart=_DAYPARTS.get(daypart, context_pb2.DAYPART_UNSPECIFIED),
        weekday=weekday,
        weekend=weekend,
        season=_SEASONS[season],
        southern_hemisphere=southern,
        country=country,
        region=region,
        days_to_next_holiday=days_to_next_holiday,
        retail_seasons=retail_seasons,
    ).SerializeToString()


@functools.lru_cache(maxsize=_FRAGMENTS)
def _store_fragment(store: Store) -> bytes:
    return context_pb2.Context(store=store_proto(store)).SerializeToString()


@functools.lru_cache(maxsize=_FRAGMENTS)
def _holiday_fragment(holiday: Holiday, upcoming: bool) -> bytes:
    message = context_pb2.Holiday(date=holiday.day.isoformat(), name=holiday.name)
    if upcoming:
        return context_pb2.Context(next_holiday=message).SerializeToString()
    return context_pb2.Context(holiday=message).SerializeToString()


def _fragments(
    context: ResolvedContext, signals: Sequence[Feature], groups: Sequence[FeatureGroup]
) -> bytes:
    parts = [
        _calendar_fragment(
            context.time_zone,
            context.daypart,
            context.weekday,
            context.weekend,
            context.season,
            context.southern_hemisphere,
            context.country,
            context.region,
            context.days_to_next_holiday,
            context.retail_seasons,
        )
    ]
    if context.store is not None:
        parts.append(_store_fragment(context.store))
    if context.holiday is not None:
        parts.append(_holiday_fragment(context.holiday, False))
    if context.next_holiday is not None:
        parts.append(_holiday_fragment(context.next_holiday, True))
    if signals:
        parts.append(_signals_fragment(signals))
    parts.extend(_group_fragment(group) for group in groups)
    return b"".join(parts)


def resolve_response(
    context: ResolvedContext,
    touchpoint: int,
    signals: Sequence[Feature],
    groups: Sequence[FeatureGroup],
    skipped: Sequence[str],
) -> context_pb2.ResolveResponse:
    """The answer to Resolve; `touchpoint` is echoed as the caller sent it, `groups` come
    from features.feature_groups."""
    response = context_pb2.ResolveResponse(
        # One constructor call sets the scalars faster than assigning them one by one.
        # What varies from request to request; the rest comes as cached fragments.
        context=context_pb2.Context(
            local_time=context.local_time.isoformat(timespec="seconds"),
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
            skipped_providers=skipped,
        )
    )
    # Parsed into the response's own Context: no copy of the finished message.
    response.context.MergeFromString(_fragments(context, signals, groups))
    return response
