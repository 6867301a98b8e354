"""Features: namespaced, sanitised, alike in VW text and DSJSON, personal only with consent."""

from __future__ import annotations

from emma.decision.domain import UNAVAILABLE_CUSTOMER, Channel
from emma.decision.eligibility import Action
from emma.decision.features import (
    NO_MATCH,
    ActionFeatureCache,
    CustomerMatch,
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


def test_match_features_relate_the_customer_to_each_action() -> None:
    view = customer(
        liked_categories=frozenset({"wine"}),
        liked_products=frozenset({"emmentaler"}),
        category_affinities=(
            ("wine", 3.0),
            ("cheese", 2.0),
            ("bakery", 1.0),
            ("fruit", 0.5),
            ("sweets", 0.0),
        ),
        channel_responsiveness={Channel.PUSH: 0.4, Channel.EMAIL: 0.2, Channel.IN_APP: 0.1},
    )
    match = CustomerMatch.of(view)
    wine = offer("w", category="wine", products=("riesling",))
    cheese = offer("c", category="cheese", products=("emmentaler",))
    assert match.features(Action(wine, Channel.PUSH)) == ("liked", "aff_rank=1", "resp_rank=1")
    assert match.features(Action(cheese, Channel.EMAIL)) == (
        "liked_product",
        "aff_rank=2",
        "resp_rank=2",
    )
    # Past the top ranks, one feature; a category or channel the profile knows nothing of,
    # another (a zero affinity counts as none).
    assert match.features(Action(offer(category="fruit", products=()), Channel.IN_APP)) == (
        "aff_rank=low",
        "resp_rank=low",
    )
    assert match.features(Action(offer(category="sweets", products=()), Channel.RECEIPT)) == (
        "aff_rank=none",
        "resp_rank=none",
    )


def test_no_match_features_without_personalisation_consent_or_profile() -> None:
    anonymous = customer(personalisation=False, liked_categories=frozenset({"cheese"}))
    assert CustomerMatch.of(anonymous) is NO_MATCH
    assert CustomerMatch.of(UNAVAILABLE_CUSTOMER) is NO_MATCH
    action = Action(offer(), Channel.IN_APP)
    assert NO_MATCH.features(action) == ()
    assert "M" not in action_features(action, NO_MATCH.features(action))
    # A profile without likes, affinities or responses gives no M features either.
    assert CustomerMatch.of(customer()).features(action) == ()


def test_the_m_part_reaches_the_vw_line_and_the_dsjson_alike() -> None:
    action = Action(offer(), Channel.IN_APP)
    cache = ActionFeatureCache()
    features = cache.get(action, ("liked", "aff_rank=1"))
    assert features.line == (
        "|A offer=o1 cat=cheese prod=emmentaler |H ch=in_app |M liked aff_rank=1"
    )
    context = dsjson_context({}, [features.namespaces])
    assert context["_multi"] == [
        {
            "A": {"offer=o1": 1.0, "cat=cheese": 1.0, "prod=emmentaler": 1.0},
            "H": {"ch=in_app": 1.0},
            "M": {"liked": 1.0, "aff_rank=1": 1.0},
        }
    ]
    # Each (action, M part) is computed once and then shared; another M part is its own entry.
    assert cache.get(action, ("liked", "aff_rank=1")) is features
    assert cache.get(action).line == "|A offer=o1 cat=cheese prod=emmentaler |H ch=in_app"
    assert len(cache) == 2


def test_key_counts_are_counted_once_per_candidate_list() -> None:
    cheese, bread = offer(), offer(offer_id="o2", category="bakery", products=())
    cache = ActionFeatureCache(candidate_sets=2)
    candidates = [
        cache.get(Action(cheese, Channel.IN_APP)),
        cache.get(Action(cheese, Channel.PUSH)),
        cache.get(Action(bread, Channel.PUSH), ("liked",)),
    ]
    counts = cache.key_counts(candidates)
    assert dict(counts) == {
        "A offer=o1": 2,
        "A cat=cheese": 2,
        "A prod=emmentaler": 2,
        "H ch=in_app": 1,
        "H ch=push": 2,
        "A offer=o2": 1,
        "A cat=bakery": 1,
        "M liked": 1,
    }
    # The same cached entries (a new list) give the same count, uncounted; others do not.
    assert cache.key_counts(list(candidates)) is counts
    fewer = cache.key_counts(candidates[:2])
    assert fewer["H ch=push"] == 1 and "A offer=o2" not in fewer
    # Only the latest lists are kept.
    cache.key_counts(candidates[1:])
    again = cache.key_counts(candidates)
    assert again is not counts and again == counts
