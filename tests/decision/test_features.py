"""Features: namespaced, sanitised, alike in VW text and DSJSON, personal only with consent."""

from __future__ import annotations

from emma.decision.domain import UNAVAILABLE_CUSTOMER, Channel
from emma.decision.eligibility import Action
from emma.decision.features import (
    action_features,
    dsjson_context,
    sanitize,
    shared_features,
    vw_lines,
    with_label,
)

from .helpers import customer, offer, situation


def test_sanitize_removes_what_vw_text_would_misread() -> None:
    assert sanitize("store format: big|small") == "store_format_big_small"


def test_profile_features_only_with_personalisation_consent() -> None:
    rich = customer(
        category_affinities=(("cheese", 0.9), ("wine", 0.4), ("bakery", 0.2), ("coffee", 0.1)),
        segments=("loyal",),
        purchase_count=3,
        total_spend=120.0,
        days_since_purchase=2.0,
        channel_responsiveness={Channel.PUSH: 0.3},
        sentiment=-0.5,
    )
    user = shared_features(rich, situation())["U"]
    assert user["aff=cheese"] == 0.9
    assert "aff=coffee" not in user  # only the top three
    assert {"seg=loyal", "rfm_r=week", "rfm_f=2_5", "rfm_m=lt200", "sentiment=neg"} <= set(user)
    assert user["resp=push"] == 0.3
    anonymous = shared_features(customer(personalisation=False, segments=("loyal",)), situation())
    assert anonymous["U"] == {"profile=anonymous": 1.0}
    assert shared_features(UNAVAILABLE_CUSTOMER, situation())["U"] == {"profile=unavailable": 1.0}


def test_context_features_pass_through() -> None:
    shared = shared_features(
        customer(), situation(features=(("daypart", "morning"), ("hour", 9.0)))
    )
    assert shared["C"] == {"daypart=morning": 1.0, "hour": 9.0}


def test_vw_lines_and_dsjson_carry_the_same_features() -> None:
    action = Action(offer(features={"discount": 20.0, "kind": "percent off"}), Channel.RECEIPT)
    shared = shared_features(customer(), situation())
    per_action = [action_features(action)]
    lines = vw_lines(shared, per_action)
    assert lines[0] == (
        "shared |U profile=known rfm_r=never rfm_f=0 rfm_m=0 sentiment=neu"
        " |C daypart=morning season=summer hour:10"
    )
    assert lines[1] == (
        "|A offer=o1 cat=cheese prod=emmentaler discount:20 kind=percent_off |H ch=receipt"
    )
    context = dsjson_context(shared, per_action)
    assert context["_multi"] == [
        {
            "A": {
                "offer=o1": 1.0,
                "cat=cheese": 1.0,
                "prod=emmentaler": 1.0,
                "discount": 20.0,
                "kind=percent_off": 1.0,
            },
            "H": {"ch=receipt": 1.0},
        }
    ]
    assert with_label(lines, 0, -1.0, 0.25)[1].startswith("0:-1:0.25 |A")
