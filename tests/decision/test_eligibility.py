"""Eligibility: every filter removes what it must, counted under its reason code."""

from __future__ import annotations

import datetime as dt

from emma.decision.domain import UNAVAILABLE_CUSTOMER, Channel, Purpose, Touchpoint
from emma.decision.eligibility import Action, eligible_actions

from .helpers import customer, offer, request, situation


def channels(result_actions: tuple[Action, ...]) -> set[Channel]:
    return {a.channel for a in result_actions}


def test_validity_window_is_inclusive_local_dates() -> None:
    today = situation().local_time.date()
    offers = [
        offer("past", valid_until=today - dt.timedelta(days=1)),
        offer("future", valid_from=today + dt.timedelta(days=1)),
        offer("today", valid_from=today, valid_until=today),
    ]
    result = eligible_actions(offers, request(), customer(), situation())
    assert {a.offer.offer_id for a in result.actions} == {"today"}
    assert result.removed["validity"] == 2


def test_season_matches_meteorological_or_retail_season() -> None:
    offers = [
        offer("spring", seasons=frozenset({"spring"})),
        offer("advent", seasons=frozenset({"advent"})),
    ]
    result = eligible_actions(offers, request(), customer(), situation(season="spring"))
    assert {a.offer.offer_id for a in result.actions} == {"spring"}
    assert result.removed["season"] == 1
    advent = situation(season="winter", retail_seasons=frozenset({"advent"}))
    result = eligible_actions(offers, request(), customer(), advent)
    assert {a.offer.offer_id for a in result.actions} == {"advent"}


def test_daypart() -> None:
    offers = [offer("breakfast", dayparts=frozenset({"morning"}))]
    assert eligible_actions(offers, request(), customer(), situation()).actions
    result = eligible_actions(offers, request(), customer(), situation(daypart="evening"))
    assert not result.actions
    assert result.removed["daypart"] == 1


def test_store_restricted_offers_need_that_store() -> None:
    offers = [offer("munich", stores=frozenset({"muenchen-marienplatz"}))]
    result = eligible_actions(offers, request(), customer(), situation(store_id="berlin-mitte"))
    assert result.removed["store"] == 1
    here = situation(store_id="muenchen-marienplatz")
    assert eligible_actions(offers, request(), customer(), here).actions


def test_touchpoint_decides_the_channels() -> None:
    offers = [offer()]
    pos = eligible_actions(offers, request(touchpoint=Touchpoint.POS), customer(), situation())
    assert channels(pos.actions) == {Channel.RECEIPT, Channel.CASHIER_PROMPT, Channel.STORE_SCREEN}
    assert pos.removed["touchpoint"] == 5
    web = eligible_actions(
        offers, request(touchpoint=Touchpoint.WEB), customer(marketing_all=True), situation()
    )
    assert channels(web.actions) == {Channel.WEB, Channel.EMAIL}
    call_center = eligible_actions(
        offers,
        request(touchpoint=Touchpoint.CALL_CENTER),
        customer(marketing_all=True),
        situation(),
    )
    assert channels(call_center.actions) == {Channel.EMAIL, Channel.SMS}


def test_caller_allowed_channels_narrow_the_touchpoint() -> None:
    only_in_app = request(allowed_channels=frozenset({Channel.IN_APP}))
    result = eligible_actions([offer()], only_in_app, customer(marketing_all=True), situation())
    assert channels(result.actions) == {Channel.IN_APP}
    assert result.removed["channel"] == 3


def test_dislikes_by_product_or_category() -> None:
    offers = [offer("gouda", products=("gouda",)), offer("wine", category="wine", products=())]
    picky = customer(
        disliked_products=frozenset({"gouda"}), disliked_categories=frozenset({"wine"})
    )
    result = eligible_actions(offers, request(), picky, situation())
    assert not result.actions
    assert result.removed["dislike"] == 2


def test_marketing_channels_need_marketing_consent_per_channel() -> None:
    only_push = customer(marketing=(Channel.PUSH,))
    result = eligible_actions([offer()], request(), only_push, situation())
    assert channels(result.actions) == {Channel.IN_APP, Channel.PUSH}
    assert result.removed["consent"] == 2  # email and sms


def test_channel_specific_denial_overrides_a_general_grant() -> None:
    from emma.decision.domain import ConsentStatus

    view = customer(marketing_all=True)
    consents = dict(view.consents)
    consents[(Purpose.MARKETING, Channel.SMS)] = ConsentStatus.WITHDRAWN
    view = customer(marketing_all=True, consents=consents)
    result = eligible_actions([offer()], request(), view, situation())
    assert channels(result.actions) == {Channel.IN_APP, Channel.PUSH, Channel.EMAIL}


def test_offer_consent_purpose_is_required_on_the_channel() -> None:
    personal = [offer("pairing", consent=Purpose.PERSONALISATION)]
    without = customer(personalisation=False, marketing_all=True)
    result = eligible_actions(personal, request(), without, situation())
    assert not result.actions
    assert result.removed["consent"] == 4
    assert eligible_actions(personal, request(), customer(), situation()).actions


def test_without_a_profile_no_consent_bound_channel_is_used() -> None:
    offers = [offer(), offer("pairing", consent=Purpose.PERSONALISATION)]
    result = eligible_actions(offers, request(), UNAVAILABLE_CUSTOMER, situation())
    assert channels(result.actions) == {Channel.IN_APP}
    assert {a.offer.offer_id for a in result.actions} == {"o1"}


def test_contact_policy_rules_plug_in_after_the_filters() -> None:
    def cap_push(action: Action) -> str | None:
        return "frequency_cap" if action.channel is Channel.PUSH else None

    view = customer(marketing_all=True)
    result = eligible_actions([offer()], request(), view, situation(), rules=[cap_push])
    assert Channel.PUSH not in channels(result.actions)
    assert result.removed["frequency_cap"] == 1


def test_action_limit_keeps_the_highest_priorities() -> None:
    offers = [offer(f"o{i}", priority=i, channels=(Channel.IN_APP,)) for i in range(5)]
    result = eligible_actions(offers, request(), customer(), situation(), max_actions=2)
    assert [a.offer.offer_id for a in result.actions] == ["o3", "o4"]
    assert result.removed["limit"] == 3
