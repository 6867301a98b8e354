"""The feature names are a contract: every one is documented in docs/context.md, in order."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from emma.common.basket import BasketLine
from emma.context import clock
from emma.context.config import DEFAULT_STORES_PATH
from emma.context.features import (
    BUILTIN_NAMES,
    DAYS_TO_HOLIDAY_CAP,
    Feature,
    context_features,
    feature_groups,
)
from emma.context.resolver import ContextRequest, ContextResolver
from emma.context.stores import load_stores

DOC = (Path(__file__).resolve().parents[2] / "docs" / "context.md").read_text()
# The names the decision service's local fallback context produces itself.
DECISION_FALLBACK_NAMES = {"daypart", "weekday", "season", "touchpoint", "hour", "is_weekend"}
RESOLVER = ContextResolver(
    load_stores(DEFAULT_STORES_PATH),
    dayparts=clock.parse_dayparts(clock.DEFAULT_DAYPARTS),
    default_time_zone="Europe/Berlin",
    default_country="DE",
)


def documented_names() -> list[str]:
    """The feature table of docs/context.md, in order."""
    section = DOC.split("## Features: the contract", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_<>]+)` \| (?:text|number) \|", section, flags=re.MULTILINE)


def test_every_built_in_feature_is_documented_once() -> None:
    names = documented_names()
    assert len(names) == len(set(names))
    assert set(names) == BUILTIN_NAMES | {"store_<attribute>"}
    assert DECISION_FALLBACK_NAMES <= BUILTIN_NAMES


def test_a_full_context_has_every_feature_in_the_documented_order() -> None:
    # Christmas Day 2026 in Munich, at the store, with a basket and a device: everything
    # applies (a holiday, retail seasons, region, distance, basket categories).
    request = ContextRequest(
        instant=datetime(2026, 12, 25, 9, tzinfo=UTC),
        location=(48.13745, 11.57551),
        touchpoint="app",
        device="ios",
        basket=(BasketLine("stollen", "bakery", 1, 12.99), BasketLine("wein", "wine", 1, 6.5)),
    )
    context = RESOLVER.resolve(request)
    features = context_features(context, [Feature("typical_temp_c", 2.0)])
    order: list[str] = []
    for feature in features[:-1]:
        name = feature.name
        if name.startswith("store_") and name not in BUILTIN_NAMES:
            name = "store_<attribute>"
        if not order or order[-1] != name:
            order.append(name)
    assert order == documented_names()
    assert features[-1] == Feature("typical_temp_c", 2.0)
    named = {f.name: f.value for f in features}
    assert named["holiday"] == "Erster Weihnachtstag" and named["is_holiday"] == 1.0
    assert named["store_id"] == "muenchen-marienplatz" and named["in_store"] == 1.0
    assert named["days_to_holiday"] == 1.0  # Zweiter Weihnachtstag


def test_groups_flatten_to_the_features_and_recurring_groups_are_shared() -> None:
    request = ContextRequest(instant=datetime(2026, 6, 7, 10, tzinfo=UTC), store_id="koeln-dom")
    first, second = RESOLVER.resolve(request), RESOLVER.resolve(request)
    groups = feature_groups(first)
    assert [f for g in groups for f in g.features] == context_features(first)
    # The same inputs give the very same group objects (they key the wire-format cache).
    again = feature_groups(second)
    for one, other in zip(groups, again, strict=True):
        if one.recurring:
            assert one is other
    # From 7 June 2026 Cologne's next holiday (3 October) is beyond the cap.
    assert {f.name: f.value for f in context_features(first)}["days_to_holiday"] == float(
        DAYS_TO_HOLIDAY_CAP
    )
