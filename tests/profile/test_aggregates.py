"""Pure aggregate maths: decay, local hours, event operations, readbacks, segments."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emma.profile import aggregates
from emma.profile.aggregates import Decayed
from emma.profile.model import (
    Channel,
    Interaction,
    InteractionKind,
    LifeEvent,
    LifeEventKind,
    OfferResponse,
    OfferResponseKind,
    Rfm,
    SupportContact,
)
from tests.profile.builders import cid, event, purchase

DAY = 86_400.0
HALF_LIFE = 30 * DAY
T0 = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)


def test_a_value_halves_after_one_half_life() -> None:
    value = Decayed((4.0,), 0.0)
    assert value.values_at(HALF_LIFE, HALF_LIFE) == pytest.approx((2.0,))
    assert value.values_at(3 * HALF_LIFE, HALF_LIFE) == pytest.approx((0.5,))


def test_reading_before_the_reference_time_does_not_grow_the_value() -> None:
    assert Decayed((1.0,), 100.0).values_at(0.0, HALF_LIFE) == (1.0,)


def test_adding_an_older_observation_keeps_the_newest_reference_time() -> None:
    value = Decayed((1.0,), 60 * DAY).add((1.0,), 0.0, HALF_LIFE)
    assert value.at == 60 * DAY
    assert value.values == pytest.approx((1.25,))


@given(st.lists(st.tuples(st.floats(0, 400 * DAY), st.floats(0.0, 10.0)), min_size=1, max_size=6))
def test_the_order_of_observations_does_not_change_the_result(
    observations: list[tuple[float, float]],
) -> None:
    results = []
    for order in itertools.islice(itertools.permutations(observations), 24):
        value = Decayed((0.0,), order[0][0])
        for at, weight in order:
            value = value.add((weight,), at, HALF_LIFE)
        results.append(value.values_at(500 * DAY, HALF_LIFE)[0])
    assert max(results) == pytest.approx(min(results), rel=1e-9, abs=1e-12)


def test_encoding_round_trips_exactly() -> None:
    value = Decayed((0.1, 1 / 3), 1_750_000_000.123)
    assert Decayed.decode(value.encode()) == value


@pytest.mark.parametrize(
    ("time", "hour"),
    [
        (datetime(2025, 6, 15, 10, 0, tzinfo=UTC), 12),  # CEST, UTC+2
        (datetime(2025, 1, 15, 10, 0, tzinfo=UTC), 11),  # CET, UTC+1
        (datetime(2025, 1, 15, 23, 30, tzinfo=UTC), 0),  # next local day
    ],
)
def test_local_hour_follows_berlin_daylight_saving(time: datetime, hour: int) -> None:
    assert aggregates.local_hour(time, "Europe/Berlin") == hour


def test_a_purchase_updates_rfm_affinities_store_and_hour() -> None:
    ev = purchase(
        "e1",
        cid("42"),
        T0,
        ("gouda", "cheese", 3.0),
        ("riesling", "wine", 9.0),
        store_id="koeln-dom",
    )
    ops = aggregates.event_ops(ev, "Europe/Berlin")
    t = T0.timestamp()
    assert ["rfm", t, 12.0] in ops
    assert ["dec", "cat", "cheese", [1.0], t] in ops
    assert ["dec", "prod", "riesling", [1.0], t] in ops
    assert ["dec", "stores", "koeln-dom", [1.0], t] in ops
    assert ["dec", "hours", "12", [1.0], t] in ops


def test_a_stated_purchase_amount_wins_over_the_lines() -> None:
    ev = purchase("e1", cid("42"), T0, ("gouda", "cheese", 3.0), amount=5.0)
    assert ["rfm", T0.timestamp(), 5.0] in aggregates.event_ops(ev, "Europe/Berlin")


def test_the_event_zone_overrides_the_default_zone() -> None:
    ev = purchase("e1", cid("42"), T0, ("gouda", "cheese", 3.0))
    ev = type(ev)(ev.event_id, ev.customer, ev.time, ev.payload, zone="America/New_York")
    assert ["dec", "hours", "6", [1.0], T0.timestamp()] in aggregates.event_ops(ev, "Europe/Berlin")


def test_interactions_weigh_less_than_purchases() -> None:
    view = event("e", cid("1"), T0, Interaction(InteractionKind.VIEW, "gouda", "", Channel.WEB))
    ops = aggregates.event_ops(view, "Europe/Berlin")
    weights = [op[3] for op in ops if op[1] == "prod"]
    assert weights == [[aggregates.INTERACTION_WEIGHTS[InteractionKind.VIEW]]]
    assert weights[0][0] < aggregates.PURCHASE_LINE_WEIGHT  # type: ignore[index]


@pytest.mark.parametrize(
    ("kind", "weights"),
    [
        (OfferResponseKind.SHOWN, [1.0, 0.0]),
        (OfferResponseKind.CLICKED, [0.0, 1.0]),
        (OfferResponseKind.REDEEMED, [0.0, 1.0]),
    ],
)
def test_offer_responses_count_impressions_and_responses(
    kind: OfferResponseKind, weights: list[float]
) -> None:
    ev = event("e", cid("1"), T0, OfferResponse(kind, "o1", "d1", Channel.PUSH))
    assert ["dec", "chan", "push", weights, T0.timestamp()] in aggregates.event_ops(
        ev, "Europe/Berlin"
    )


def test_a_dismissal_or_an_unknown_channel_changes_no_channel_stats() -> None:
    for payload in (
        OfferResponse(OfferResponseKind.DISMISSED, "o1", "", Channel.PUSH),
        OfferResponse(OfferResponseKind.CLICKED, "o1", "", Channel.UNSPECIFIED),
    ):
        ops = aggregates.event_ops(event("e", cid("1"), T0, payload), "Europe/Berlin")
        assert not [op for op in ops if op[1] == "chan"]


def test_a_life_event_without_its_own_time_uses_the_event_time() -> None:
    ev = event("e", cid("1"), T0, LifeEvent(LifeEventKind.MOVED, None, "berlin-mitte"))
    assert ["life", "moved", T0.timestamp(), "berlin-mitte"] in aggregates.event_ops(
        ev, "Europe/Berlin"
    )


def test_support_sentiment_is_a_weighted_pair() -> None:
    ev = event("e", cid("1"), T0, SupportContact(-0.5, "late delivery", Channel.EMAIL))
    assert ["dec", "profile", "sentiment", [-0.5, 1.0], T0.timestamp()] in aggregates.event_ops(
        ev, "Europe/Berlin"
    )


def test_sentiment_is_the_decayed_mean_of_contacts() -> None:
    stored = (
        Decayed((0.0, 0.0), 0.0)
        .add((-1.0, 1.0), 0.0, HALF_LIFE)
        .add((1.0, 1.0), HALF_LIFE, HALF_LIFE)
    )
    # The older, unhappy contact counts half: (1 - 0.5) / (1 + 0.5).
    assert aggregates.sentiment(stored.encode(), HALF_LIFE, HALF_LIFE) == pytest.approx(1 / 3)
    assert aggregates.sentiment(None, 0.0, HALF_LIFE) == 0.0


def test_affinities_are_decayed_to_now_and_sorted_highest_first() -> None:
    raw = {
        "wine": Decayed((4.0,), 0.0).encode(),
        "cheese": Decayed((3.0,), HALF_LIFE).encode(),
    }
    ranked = aggregates.affinities(raw, HALF_LIFE, HALF_LIFE)
    assert [(a.key, a.score) for a in ranked] == [("cheese", 3.0), ("wine", 2.0)]


def test_responsiveness_is_smoothed_bounded_and_zero_without_data() -> None:
    assert aggregates.responsiveness(0.0, 0.0) == 0.0
    one_of_one = aggregates.responsiveness(1.0, 1.0)
    assert 0.0 < one_of_one < 0.5  # one click proves little
    assert aggregates.responsiveness(1000.0, 500.0) == pytest.approx(0.5, abs=0.01)
    assert aggregates.responsiveness(0.0, 3.0) <= 1.0


def test_active_hours_always_has_24_buckets() -> None:
    hours = aggregates.active_hours({"7": Decayed((2.0,), 0.0).encode()}, 0.0, HALF_LIFE)
    assert len(hours) == 24
    assert hours[7] == 2.0
    assert sum(hours) == 2.0


def test_life_events_are_newest_first_and_bounded() -> None:
    items = [{"k": "birthday", "t": float(i), "s": ""} for i in range(15)]
    records = aggregates.life_events(items)
    assert len(records) == aggregates.MAX_LIFE_EVENTS
    assert records[0].time.timestamp() == 14.0


def test_home_store_prefers_the_latest_move_over_visits() -> None:
    stores = {"koeln-dom": Decayed((9.0,), 0.0).encode()}
    assert aggregates.home_store("", stores, 0.0, HALF_LIFE) == "koeln-dom"
    assert aggregates.home_store("berlin-mitte", stores, 0.0, HALF_LIFE) == "berlin-mitte"


def test_segments() -> None:
    now = T0
    recent = Rfm(now - timedelta(days=3), 6, 100.0)
    assert aggregates.segments(recent, now - timedelta(days=400), 0.0, now) == ("loyal",)
    lapsed = Rfm(now - timedelta(days=120), 6, 100.0)
    assert aggregates.segments(lapsed, now - timedelta(days=400), -0.8, now) == (
        "lapsed",
        "unhappy",
    )
    assert aggregates.segments(Rfm(), now - timedelta(days=1), 0.0, now) == ("new",)


def test_decay_factor_is_finite_for_long_gaps() -> None:
    assert math.isfinite(aggregates.decay_factor(1e12, HALF_LIFE))
