"""The context as named model features with stable lowercase snake_case names.

Text features: daypart, weekday (monday..sunday), season, country, region, touchpoint,
device, store_id, store_<attribute> (e.g. store_format), holiday (today's name),
retail_season (one per active season), basket_category (one per category).
Number features: hour (local 0..23), is_weekend, is_holiday, days_to_holiday (capped),
basket_items, basket_value, in_store, store_open, distance_km (only with a location).
Features that do not apply are left out rather than sent empty.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from emma.context import clock
from emma.context.resolver import ResolvedContext

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


def is_builtin_name(name: str) -> bool:
    """Whether a feature name belongs to the context itself (store_* is for store attributes)."""
    return name in BUILTIN_NAMES or name.startswith("store_")


@dataclasses.dataclass(frozen=True)
class Feature:
    """A named model feature: a number or a category (text)."""

    name: str
    value: float | str


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def context_features(context: ResolvedContext, signals: Sequence[Feature] = ()) -> list[Feature]:
    """Every context fact as a feature, followed by the providers' signals."""
    features = [
        Feature("daypart", context.daypart),
        Feature("weekday", clock.weekday_name(context.local_time)),
        Feature("season", context.season),
        Feature("country", context.country),
    ]
    if context.region:
        features.append(Feature("region", context.region))
    features.append(Feature("touchpoint", context.touchpoint))
    if context.device:
        features.append(Feature("device", context.device))
    if context.store is not None:
        features.append(Feature("store_id", context.store.store_id))
        features.extend(
            Feature(f"store_{key}", value)
            for key, value in sorted(context.store.attributes.items())
        )
    if context.holiday is not None:
        features.append(Feature("holiday", context.holiday.name))
    features.extend(Feature("retail_season", name) for name in context.retail_seasons)
    features.extend(Feature("basket_category", name) for name in context.basket.categories)

    days = context.days_to_next_holiday if context.next_holiday else DAYS_TO_HOLIDAY_CAP
    features += [
        Feature("hour", float(context.local_time.hour)),
        Feature("is_weekend", _flag(context.weekend)),
        Feature("is_holiday", _flag(context.holiday is not None)),
        Feature("days_to_holiday", float(min(days, DAYS_TO_HOLIDAY_CAP))),
        Feature("basket_items", float(context.basket.item_count)),
        Feature("basket_value", context.basket.value),
        Feature("in_store", _flag(context.in_store)),
        Feature("store_open", _flag(context.store_open)),
    ]
    if context.store_distance_m is not None:
        features.append(Feature("distance_km", context.store_distance_m / 1000.0))
    features.extend(signals)
    return features
