"""The context as named model features with stable lowercase snake_case names.

The names are a contract with the decision service, which feeds them to its model as they
are; docs/context.md lists them. Text features: daypart, weekday (monday..sunday), season,
country, region, holiday (today's name), retail_season (one per active season),
touchpoint, device, store_id, store_<attribute> (e.g. store_format), basket_category (one
per category). Number features: hour (local 0..23), is_weekend, is_holiday,
days_to_holiday (capped), in_store, store_open, distance_km (only with a location),
basket_items, basket_value. Signal providers add their own names after these. Features
that do not apply are left out rather than sent empty.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import NamedTuple

from emma.context import clock, wire
from emma.context.calendar import Holiday
from emma.context.resolver import BasketSummary, ResolvedContext
from emma.context.stores import Store

# Beyond a couple of months the distance to the next holiday carries no signal.
DAYS_TO_HOLIDAY_CAP = 60
FEATURE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
BUILTIN_NAMES = frozenset(
    {
        "daypart", "weekday", "season", "country", "region", "touchpoint", "device",
        "store_id", "holiday", "retail_season", "basket_category", "hour", "is_weekend",
        "is_holiday", "days_to_holiday", "basket_items", "basket_value", "in_store",
        "store_open", "distance_km",
    }
)  # fmt: skip
_CACHE = 65_536


def is_builtin_name(name: str) -> bool:
    """Whether a feature name belongs to the context itself (store_* is for store attributes)."""
    return name in BUILTIN_NAMES or name.startswith("store_")


class Feature(NamedTuple):
    """A named model feature: a number or a category (text).

    A named tuple rather than a dataclass: some 25 are made per request, and groups of
    them are keys of the wire-format cache in emma.context.convert.
    """

    name: str
    value: float | str


class FeatureGroup(NamedTuple):
    """Features that come and go together; `recurring` groups repeat across requests, so
    their encoding is worth caching (not so a basket's value or a distance)."""

    features: tuple[Feature, ...]
    recurring: bool
    # The features as a Context fragment (emma.context.wire), made once with the groups
    # built once below; empty when the encoder is to make it.
    fragment: bytes = b""


def _cached(features: tuple[Feature, ...]) -> FeatureGroup:
    """A recurring group with its fragment, for the group caches below."""
    return FeatureGroup(features, True, wire.features_fragment(features))


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def recurs(features: Sequence[Feature]) -> bool:
    """Whether the values are texts and whole numbers, which recur from request to request."""
    return all(isinstance(f.value, str) or f.value.is_integer() for f in features)


# Each group is built once per distinct input and reused: the same tuple object comes
# back for the same daypart and hour, the same day at the same place, the same store.


@functools.lru_cache(maxsize=_CACHE)
def _clock_group(daypart: str, weekday: int, hour: int) -> FeatureGroup:
    return _cached(
        (
            Feature("daypart", daypart),
            Feature("weekday", clock.WEEKDAY_NAMES[weekday - 1]),
            Feature("hour", float(hour)),
            Feature("is_weekend", _flag(weekday >= 6)),
        )
    )


@functools.lru_cache(maxsize=_CACHE)
def _calendar_group(
    season: str,
    country: str,
    region: str,
    holiday: Holiday | None,
    retail_seasons: tuple[str, ...],
    days_to_holiday: int,
) -> FeatureGroup:
    features = [Feature("season", season), Feature("country", country)]
    if region:
        features.append(Feature("region", region))
    if holiday is not None:
        features.append(Feature("holiday", holiday.name))
    features.extend(Feature("retail_season", name) for name in retail_seasons)
    features.append(Feature("is_holiday", _flag(holiday is not None)))
    features.append(Feature("days_to_holiday", float(days_to_holiday)))
    return _cached(tuple(features))


@functools.lru_cache(maxsize=_CACHE)
def _request_group(touchpoint: str, device: str) -> FeatureGroup:
    if device:
        return _cached((Feature("touchpoint", touchpoint), Feature("device", device)))
    return _cached((Feature("touchpoint", touchpoint),))


@functools.lru_cache(maxsize=_CACHE)
def _store_group(store: Store) -> FeatureGroup:
    return _cached(store_features(store))


@functools.lru_cache(maxsize=4)
def _store_state_group(in_store: bool, store_open: bool) -> FeatureGroup:
    return _cached((Feature("in_store", _flag(in_store)), Feature("store_open", _flag(store_open))))


def store_features(store: Store) -> tuple[Feature, ...]:
    """store_id and the store's attributes as store_<key>, in key order."""
    return (
        Feature("store_id", store.store_id),
        *(Feature(f"store_{key}", value) for key, value in sorted(store.attributes.items())),
    )


_NO_BASKET = _cached((Feature("basket_items", 0.0), Feature("basket_value", 0.0)))


@functools.lru_cache(maxsize=4096)  # many combinations, each rarely back: keep it small
def _basket_contents_group(categories: tuple[str, ...], item_count: int) -> FeatureGroup:
    return _cached(
        (
            *(Feature("basket_category", name) for name in categories),
            Feature("basket_items", float(item_count)),
        )
    )


def _basket_groups(basket: BasketSummary) -> list[FeatureGroup]:
    if basket.item_count == 0:
        return [_NO_BASKET]
    return [
        _basket_contents_group(basket.categories, basket.item_count),
        # A basket's value rarely recurs: not worth caching.
        FeatureGroup((Feature("basket_value", basket.value),), False),
    ]


def feature_groups(context: ResolvedContext, signals: Sequence[Feature] = ()) -> list[FeatureGroup]:
    """The features of a context in groups, in a fixed order, followed by the signals."""
    local = context.local_time
    days = context.days_to_next_holiday if context.next_holiday else DAYS_TO_HOLIDAY_CAP
    groups = [
        _clock_group(context.daypart, local.isoweekday(), local.hour),
        _calendar_group(
            context.season,
            context.country,
            context.region,
            context.holiday,
            context.retail_seasons,
            min(days, DAYS_TO_HOLIDAY_CAP),
        ),
        _request_group(context.touchpoint, context.device),
    ]
    if context.store is not None:
        groups.append(_store_group(context.store))
    groups.append(_store_state_group(context.in_store, context.store_open))
    if context.store_distance_m is not None:
        groups.append(
            FeatureGroup((Feature("distance_km", context.store_distance_m / 1000),), False)
        )
    groups.extend(_basket_groups(context.basket))
    if signals:
        groups.append(FeatureGroup(tuple(signals), recurs(signals)))
    return groups


def context_features(context: ResolvedContext, signals: Sequence[Feature] = ()) -> list[Feature]:
    """Every context fact as a feature, followed by the providers' signals."""
    return [feature for group in feature_groups(context, signals) for feature in group.features]
