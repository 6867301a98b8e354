"""Segment rules: what each comparison and combinator means, and what is rejected."""

from __future__ import annotations

from typing import Any

import pytest

from emma.decision.domain import Channel, CustomerView
from emma.decision.segments import SegmentError, compile_segments

from .helpers import customer

LOYAL = customer(
    purchase_count=8,
    days_since_purchase=3.0,
    total_spend=420.0,
    liked_categories=frozenset({"cheese", "wine"}),
    category_affinities=(("cheese", 0.9), ("bakery", 0.2)),
    channel_responsiveness={Channel.PUSH: 0.3},
    segments=("vip",),
    home_store_id="berlin-mitte",
)
NEWCOMER = customer()


def matches(rule: dict[str, Any], view: CustomerView) -> bool:
    return compile_segments({"s": rule})["s"].matches(view)


@pytest.mark.parametrize(
    ("rule", "loyal", "newcomer"),
    [
        ({"field": "rfm.frequency", "gte": 5}, True, False),
        ({"field": "rfm.frequency", "gte": 5, "lt": 8}, False, False),
        ({"field": "rfm.monetary", "gt": 400}, True, False),
        ({"field": "rfm.recency_days", "lte": 30}, True, False),
        # A number the profile does not have fails every comparison, but not `exists: false`.
        ({"field": "rfm.recency_days", "exists": False}, False, True),
        ({"not": {"field": "rfm.recency_days", "lte": 30}}, False, True),
        ({"field": "sentiment", "eq": 0}, True, True),
        ({"field": "liked_categories", "contains": "cheese"}, True, False),
        ({"field": "liked_categories", "contains_any": ["beer", "wine"]}, True, False),
        ({"field": "liked_products", "empty": True}, True, True),
        ({"field": "segments", "contains": "vip"}, True, False),
        ({"field": "home_store", "in": ["berlin-mitte", "koeln-dom"]}, True, False),
        ({"field": "home_store", "ne": "berlin-mitte"}, False, True),
        ({"field": "category_affinity.cheese", "gte": 0.5}, True, False),
        ({"field": "category_affinity.bakery", "gte": 0.5}, False, False),
        ({"field": "channel_responsiveness.push", "gt": 0.1}, True, False),
        (
            {"all": [{"field": "rfm.frequency", "gte": 5}, {"field": "sentiment", "lt": 0}]},
            False,
            False,
        ),
        (
            {"any": [{"field": "rfm.frequency", "gte": 5}, {"field": "sentiment", "gte": 0}]},
            True,
            True,
        ),
    ],
)
def test_rules_evaluate_against_the_customer_view(
    rule: dict[str, Any], loyal: bool, newcomer: bool
) -> None:
    assert matches(rule, LOYAL) is loyal
    assert matches(rule, NEWCOMER) is newcomer


def test_segments_can_build_on_each_other() -> None:
    compiled = compile_segments(
        {
            "regular": {"field": "rfm.frequency", "gte": 3},
            "cheese_regular": {
                "all": [{"segment": "regular"}, {"field": "liked_categories", "contains": "cheese"}]
            },
        }
    )
    assert compiled["cheese_regular"].matches(LOYAL)
    assert not compiled["cheese_regular"].matches(NEWCOMER)


@pytest.mark.parametrize(
    ("rule", "path", "problem"),
    [
        ({"field": "email"}, "segments.s.field", "unknown field 'email'"),
        ({"field": "category_affinity."}, "segments.s.field", "unknown field"),
        ({"field": "channel_responsiveness.fax", "gt": 0}, "segments.s.field", "unknown field"),
        ({"field": "sentiment"}, "segments.s", "needs a comparison"),
        ({"field": "sentiment", "contains": "x"}, "segments.s.contains", "not a comparison"),
        ({"field": "sentiment", "gt": True}, "segments.s.gt", "must be a number"),
        ({"field": "home_store", "in": []}, "segments.s.in", "non-empty list"),
        ({"all": [], "any": []}, "segments.s", "exactly one of"),
        ({"segment": "s"}, "segments.s.segment", "cycle: s -> s"),
        ({"nand": []}, "segments.s", "expected one of"),
    ],
)
def test_invalid_rules_say_where(rule: dict[str, Any], path: str, problem: str) -> None:
    with pytest.raises(SegmentError) as error:
        compile_segments({"s": rule})
    assert error.value.path == path
    assert problem in error.value.problem


def test_nesting_is_bounded() -> None:
    rule: dict[str, Any] = {"field": "sentiment", "gt": 0}
    for _ in range(12):
        rule = {"not": rule}
    with pytest.raises(SegmentError, match="deeper than"):
        compile_segments({"s": rule})
