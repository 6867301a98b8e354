"""Reasons: what set the action apart, the model's odds, segments, schedule and filters."""

from __future__ import annotations

from datetime import UTC, datetime

from emma.decision.domain import Channel
from emma.decision.eligibility import Action
from emma.decision.features import Namespaces
from emma.decision.reasons import distinctive_features, explain, filter_reasons
from emma.decision.segments import compile_segments

from .helpers import customer, offer

ACTIONS: list[Namespaces] = [
    {"A": {"offer=a": 1.0, "cat=cheese": 1.0, "kind=percent": 1.0}, "H": {"ch=push": 1.0}},
    {"A": {"offer=a": 1.0, "cat=cheese": 1.0, "kind=percent": 1.0}, "H": {"ch=in_app": 1.0}},
    {"A": {"offer=b": 1.0, "cat=cheese": 1.0, "kind=bundle": 1.0}, "H": {"ch=push": 1.0}},
]


def test_the_rarest_features_of_the_chosen_action_come_first() -> None:
    assert distinctive_features(ACTIONS, 2) == ["offer=b", "kind=bundle", "ch=push", "cat=cheese"]
    assert distinctive_features(ACTIONS, 1, limit=2) == ["ch=in_app", "offer=a"]


def test_explain_names_odds_segments_schedule_and_filters() -> None:
    segments = compile_segments({"regulars": {"field": "rfm.frequency", "gte": 3}})
    later = datetime(2026, 6, 16, 16, 0, tzinfo=UTC)
    actions = [
        Action(offer("a"), Channel.PUSH),
        Action(offer("a"), Channel.IN_APP),
        Action(offer("b", segments=("regulars",)), Channel.PUSH, send_at=later),
    ]
    reasons = dict(
        explain(
            actions=actions,
            pmf=[0.8, 0.15, 0.05],
            index=2,
            shared={"U": {"like=cheese": 1.0, "aff=cheese": 0.7}, "C": {"hour": 23.0}},
            per_action=ACTIONS,
            filtered={"filtered.consent": 2, "filtered.dislike": 1},
            customer=customer(purchase_count=5),
            segments=segments,
        )
    )
    assert reasons["chosen.model"] == (
        "p=0.050 among 3 actions; explored (the top action had p=0.800)"
    )
    assert reasons["feature.action"] == "offer=b,kind=bundle,ch=push,cat=cheese"
    assert reasons["feature.shared"] == "hour,like=cheese,aff=cheese"
    assert reasons["targeted.segment"] == "regulars"
    assert "scheduled.quiet_hours" in reasons
    assert reasons["filtered.consent"] == "2 actions"
    assert reasons["filtered.dislike"] == "1 offer"


def test_filter_counts_say_offers_or_actions() -> None:
    assert filter_reasons({"filtered.season": 3, "filtered.frequency_cap": 1}) == [
        ("filtered.frequency_cap", "1 action"),
        ("filtered.season", "3 offers"),
    ]
