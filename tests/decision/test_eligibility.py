"""Eligibility: every filter removes what it must, counted under its reason code."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from emma.decision.domain import UNAVAILABLE_CUSTOMER, Channel, Purpose, QuietHours, Touchpoint
from emma.decision.eligibility import (
    Action,
    Policy,
    StaticEligibility,
    channel_allowed,
    eligible_actions,
)
from emma.decision.policy import Cap, Contact, ContactHistory, ContactPolicy

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
    # Among equal priorities the first stay, and the kept keep the catalog's order.
    ties = [
        offer(f"t{i}", priority=p, channels=(Channel.IN_APP,))
        for i, p in enumerate([1, 3, 0, 3, 3])
    ]
    kept = eligible_actions(ties, request(), customer(), situation(), max_actions=3).actions
    assert [a.offer.offer_id for a in kept] == ["t1", "t3", "t4"]
    kept = eligible_actions(ties, request(), customer(), situation(), max_actions=2).actions
    assert [a.offer.offer_id for a in kept] == ["t1", "t3"]


# --- regions, segments, cool-downs, quiet hours, frequency caps ---------------------------

BAVARIA = situation(country="DE", region="BY", store_id="muenchen-marienplatz")


def test_region_restricted_offers_need_that_country_or_subdivision() -> None:
    offers = [
        offer("bavaria", regions=frozenset({"DE-BY"})),
        offer("germany", regions=frozenset({"DE"})),
        offer("austria", regions=frozenset({"AT"})),
    ]
    result = eligible_actions(offers, request(), customer(), BAVARIA)
    assert {a.offer.offer_id for a in result.actions} == {"bavaria", "germany"}
    assert result.removed["region"] == 1
    berlin = situation(country="DE", region="BE")
    result = eligible_actions(offers, request(), customer(), berlin)
    assert {a.offer.offer_id for a in result.actions} == {"germany"}
    # The local fallback context knows no country: regional offers drop out.
    result = eligible_actions(offers, request(), customer(), situation())
    assert not result.actions and result.removed["region"] == 3


def _policy(**changes: Any) -> Policy:
    from emma.decision.segments import compile_segments

    segments = compile_segments({"regulars": {"field": "rfm.frequency", "gte": 3}})
    return dataclasses.replace(Policy(segments=segments), **changes)


def test_segment_offers_need_a_matching_consenting_customer() -> None:
    offers = [offer("regular", segments=("regulars",)), offer("everyone")]
    regular = customer(purchase_count=5)
    result = eligible_actions(offers, request(), regular, situation(), policy=_policy())
    assert {a.offer.offer_id for a in result.actions} == {"regular", "everyone"}
    newcomer = customer(purchase_count=1)
    result = eligible_actions(offers, request(), newcomer, situation(), policy=_policy())
    assert {a.offer.offer_id for a in result.actions} == {"everyone"}
    assert result.removed["segment"] == 1
    # Targeting by profile is personalisation: without that consent no segment matches.
    private = customer(purchase_count=5, personalisation=False)
    result = eligible_actions(offers, request(), private, situation(), policy=_policy())
    assert result.removed["segment"] == 1


def test_dismissed_offers_and_their_category_cool_down() -> None:
    now = situation().local_time
    policy = _policy(
        contact=ContactPolicy(
            offer_cooldown=dt.timedelta(days=14), category_cooldown=dt.timedelta(days=1)
        )
    )
    offers = [
        offer("gouda", category="cheese"),
        offer("brie", category="cheese"),
        offer("wine", category="wine"),
    ]
    yesterday_evening = customer(last_dismissed={"gouda": now - dt.timedelta(hours=15)})
    result = eligible_actions(offers, request(), yesterday_evening, situation(), policy=policy)
    assert {a.offer.offer_id for a in result.actions} == {"wine"}
    assert result.removed["cooldown"] == 2
    last_week = customer(last_dismissed={"gouda": now - dt.timedelta(days=7)})
    result = eligible_actions(offers, request(), last_week, situation(), policy=policy)
    assert {a.offer.offer_id for a in result.actions} == {"brie", "wine"}
    long_ago = customer(last_dismissed={"gouda": now - dt.timedelta(days=15)})
    result = eligible_actions(offers, request(), long_ago, situation(), policy=policy)
    assert len({a.offer.offer_id for a in result.actions}) == 3
    # Without a configured cool-down a dismissal filters nothing.
    result = eligible_actions(offers, request(), yesterday_evening, situation())
    assert result.removed["cooldown"] == 0


NIGHT = situation(
    local_time=dt.datetime(2026, 6, 15, 23, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    time_zone="Europe/Berlin",
)
EVENING_ACTIVE = tuple(5.0 if hour == 18 else 1.0 if hour == 9 else 0.0 for hour in range(24))


def test_a_push_in_quiet_hours_is_scheduled_for_the_most_active_hour() -> None:
    sleeper = customer(
        marketing_all=True, quiet_hours=QuietHours(22 * 60, 7 * 60), active_hours=EVENING_ACTIVE
    )
    result = eligible_actions([offer()], request(), sleeper, NIGHT)
    by_channel = {a.channel: a for a in result.actions}
    # 18:00 Berlin (summer time) the next day is 16:00 UTC.
    assert by_channel[Channel.PUSH].send_at == dt.datetime(2026, 6, 16, 16, 0, tzinfo=dt.UTC)
    # In-app, e-mail and SMS are not intrusive by default: they go now.
    assert by_channel[Channel.IN_APP].send_at is None
    assert by_channel[Channel.EMAIL].send_at is None
    # Outside quiet hours nothing moves.
    result = eligible_actions([offer()], request(), sleeper, situation())
    assert all(a.send_at is None for a in result.actions)


def test_a_push_in_quiet_hours_without_a_known_active_hour_is_dropped() -> None:
    sleeper = customer(marketing_all=True, quiet_hours=QuietHours(22 * 60, 7 * 60))
    result = eligible_actions([offer()], request(), sleeper, NIGHT)
    assert Channel.PUSH not in channels(result.actions)
    assert result.removed["quiet_hours"] == 1
    # Activity only beyond the horizon counts as none.
    short = _policy(contact=ContactPolicy(quiet_horizon=dt.timedelta(hours=6)))
    active = dataclasses.replace(sleeper, active_hours=EVENING_ACTIVE)
    result = eligible_actions([offer()], request(), active, NIGHT, policy=short)
    assert result.removed["quiet_hours"] == 1


def test_configured_intrusive_channels_follow_quiet_hours_too() -> None:
    sleeper = customer(
        marketing_all=True, quiet_hours=QuietHours(22 * 60, 7 * 60), active_hours=EVENING_ACTIVE
    )
    policy = _policy(contact=ContactPolicy(quiet_channels=frozenset({Channel.PUSH, Channel.SMS})))
    result = eligible_actions([offer()], request(), sleeper, NIGHT, policy=policy)
    scheduled = {a.channel for a in result.actions if a.send_at is not None}
    assert scheduled == {Channel.PUSH, Channel.SMS}


PUSH_DAILY = Cap("push-daily", 1, dt.timedelta(days=1), frozenset({Channel.PUSH}))
WEEKLY = Cap("weekly", 3, dt.timedelta(days=7))
CAPPED = ContactPolicy(caps=(PUSH_DAILY, WEEKLY))


def history(*contacts: tuple[Channel, dt.timedelta]) -> ContactHistory:
    now = request().request_time
    return ContactHistory(tuple(Contact(ch, (now - ago).timestamp()) for ch, ago in contacts))


def test_frequency_caps_per_channel_and_overall() -> None:
    view = customer(marketing_all=True)
    fresh = eligible_actions(
        [offer()], request(), view, situation(), policy=_policy(contact=CAPPED)
    )
    assert Channel.PUSH in channels(fresh.actions)
    pushed = _policy(contact=CAPPED, contacts=history((Channel.PUSH, dt.timedelta(hours=3))))
    result = eligible_actions([offer()], request(), view, situation(), policy=pushed)
    assert channels(result.actions) == {Channel.IN_APP, Channel.EMAIL, Channel.SMS}
    assert result.removed["frequency_cap"] == 1
    # A push 25 hours ago is outside the daily window.
    yesterday = _policy(contact=CAPPED, contacts=history((Channel.PUSH, dt.timedelta(hours=25))))
    result = eligible_actions([offer()], request(), view, situation(), policy=yesterday)
    assert Channel.PUSH in channels(result.actions)
    # Three contacts this week on any channel: every channel is capped.
    busy = _policy(
        contact=CAPPED,
        contacts=history(
            (Channel.EMAIL, dt.timedelta(days=1)),
            (Channel.SMS, dt.timedelta(days=2)),
            (Channel.IN_APP, dt.timedelta(days=6)),
        ),
    )
    result = eligible_actions([offer()], request(), view, situation(), policy=busy)
    assert not result.actions
    assert result.removed["frequency_cap"] == 4


def test_unreadable_counters_drop_every_capped_channel() -> None:
    policy = _policy(contact=ContactPolicy(caps=(PUSH_DAILY,)), contacts=None)
    result = eligible_actions(
        [offer()], request(), customer(marketing_all=True), situation(), policy=policy
    )
    assert channels(result.actions) == {Channel.IN_APP, Channel.EMAIL, Channel.SMS}
    assert result.removed["policy_unavailable"] == 1


def test_the_fallback_channel_is_never_capped_nor_quiet() -> None:
    view = customer(
        marketing_all=True, quiet_hours=QuietHours(22 * 60, 7 * 60), active_hours=EVENING_ACTIVE
    )
    policy = _policy(
        contact=ContactPolicy(
            caps=(Cap("mail", 5, dt.timedelta(days=1), frozenset({Channel.EMAIL})),)
        )
    )
    the_offer = offer()
    assert channel_allowed(the_offer, Channel.PUSH, request(), view)
    assert not channel_allowed(the_offer, Channel.PUSH, request(), view, NIGHT, policy)
    assert channel_allowed(the_offer, Channel.PUSH, request(), view, situation(), policy)
    assert not channel_allowed(the_offer, Channel.EMAIL, request(), view, situation(), policy)
    assert channel_allowed(the_offer, Channel.IN_APP, request(), view, NIGHT, policy)


def test_static_outcomes_are_reused_only_for_the_very_same_offers() -> None:
    static = StaticEligibility()
    cheese, wine = offer("cheese"), offer("wine", dayparts=frozenset({"evening"}))
    candidates = (cheese, wine)
    first = eligible_actions(candidates, request(), customer(), situation(), static=static)
    assert {a.offer.offer_id for a in first.actions} == {"cheese"}
    assert first.removed["daypart"] == 1
    # The same candidates again: the same outcome, the per-offer work skipped.
    again = eligible_actions(candidates, request(), customer(), situation(), static=static)
    assert again == first
    # A reloaded catalog brings new offers under the same ids: they are judged anew.
    reloaded = (cheese, dataclasses.replace(wine, dayparts=frozenset({"morning"})))
    later = eligible_actions(reloaded, request(), customer(), situation(), static=static)
    assert {a.offer.offer_id for a in later.actions} == {"cheese", "wine"}
    assert "daypart" not in later.removed
    # Fewer candidates (say, one held) are their own list, at the same place.
    fewer = eligible_actions((reloaded[1],), request(), customer(), situation(), static=static)
    assert {a.offer.offer_id for a in fewer.actions} == {"wine"}
    # Another daypart is another place and time.
    evening = eligible_actions(
        candidates, request(), customer(), situation(daypart="evening"), static=static
    )
    assert {a.offer.offer_id for a in evening.actions} == {"cheese", "wine"}
