"""Pure aggregate maths: forward decay, local hours, event operations, readbacks, segments."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emma.profile import aggregates
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
from emma.profile.record import OfferRecord, Record
from tests.profile.builders import cid, event, purchase

DAY = 86_400.0
HALF_LIFE = 30 * DAY
T0 = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)
ZONE = "Europe/Berlin"


def test_a_value_halves_after_one_half_life() -> None:
    stored = aggregates.forward(4.0, 0.0, 0.0, HALF_LIFE)
    assert aggregates.read(stored, 0.0, HALF_LIFE, HALF_LIFE) == pytest.approx(2.0)
    assert aggregates.read(stored, 0.0, 3 * HALF_LIFE, HALF_LIFE) == pytest.approx(0.5)


def test_reading_before_the_landmark_does_not_grow_the_value() -> None:
    stored = aggregates.forward(1.0, 100.0, 100.0, HALF_LIFE)
    assert aggregates.read(stored, 100.0, 0.0, HALF_LIFE) == 1.0


def test_an_older_observation_counts_less() -> None:
    stored = aggregates.forward(1.0, 60 * DAY, 60 * DAY, HALF_LIFE)
    stored += aggregates.forward(1.0, 0.0, 60 * DAY, HALF_LIFE)
    assert aggregates.read(stored, 60 * DAY, 60 * DAY, HALF_LIFE) == pytest.approx(1.25)


def test_rebasing_keeps_the_value() -> None:
    stored = aggregates.forward(3.0, 10 * DAY, 0.0, HALF_LIFE)
    moved = aggregates.rebase(stored, 0.0, 40 * DAY, HALF_LIFE)
    assert aggregates.read(moved, 40 * DAY, 50 * DAY, HALF_LIFE) == pytest.approx(
        aggregates.read(stored, 0.0, 50 * DAY, HALF_LIFE), abs=1e-3
    )


@given(st.lists(st.tuples(st.floats(0, 400 * DAY), st.floats(0.0, 10.0)), min_size=1, max_size=6))
def test_the_order_of_observations_does_not_change_the_result(
    observations: list[tuple[float, float]],
) -> None:
    landmark = 200 * DAY
    results = {
        sum(aggregates.forward(w, at, landmark, HALF_LIFE) for at, w in order)
        for order in itertools.islice(itertools.permutations(observations), 24)
    }
    assert len(results) == 1
    exact = sum(w * 0.5 ** ((500 * DAY - at) / HALF_LIFE) for at, w in observations)
    value = aggregates.read(results.pop(), landmark, 500 * DAY, HALF_LIFE)
    assert value == pytest.approx(exact, abs=len(observations) * 0.001)


def test_fixed_point_rounds_like_lua() -> None:
    # Lua's math.floor(x + 0.5): halves go up, also below zero.
    assert aggregates.forward(0.0025, 0.0, 0.0, HALF_LIFE) == 3
    assert aggregates.forward(-0.0025, 0.0, 0.0, HALF_LIFE) == -2


@pytest.mark.parametrize(
    ("time", "hour"),
    [
        (datetime(2025, 6, 15, 10, 0, tzinfo=UTC), 12),  # CEST, UTC+2
        (datetime(2025, 1, 15, 10, 0, tzinfo=UTC), 11),  # CET, UTC+1
        (datetime(2025, 1, 15, 23, 30, tzinfo=UTC), 0),  # next local day
    ],
)
def test_local_hour_follows_berlin_daylight_saving(time: datetime, hour: int) -> None:
    assert aggregates.local_hour(time, ZONE) == hour


def test_a_purchase_updates_rfm_affinities_store_and_hour() -> None:
    ev = purchase(
        "e1", cid("42"), T0, ("gouda", "cheese", 3.0), ("riesling", "wine", 9.0), store_id="k"
    )
    ops = aggregates.event_ops(ev, ZONE)
    t = T0.timestamp()
    assert ["m", "P", t] in ops
    assert ["i", "N", 1] in ops
    assert ["i", "M", 12_000] in ops  # thousandths
    assert ["d", "ccheese", 1.0, t] in ops
    assert ["d", "priesling", 1.0, t] in ops
    assert ["d", "sk", 1.0, t] in ops
    assert ["d", "h12", 1.0, t] in ops


def test_a_stated_purchase_amount_wins_over_the_lines() -> None:
    ev = purchase("e1", cid("42"), T0, ("gouda", "cheese", 3.0), amount=5.0)
    assert ["i", "M", 5000] in aggregates.event_ops(ev, ZONE)


def test_the_event_zone_overrides_the_default_zone() -> None:
    ev = purchase("e1", cid("42"), T0, ("gouda", "cheese", 3.0))
    ev = type(ev)(ev.event_id, ev.customer, ev.time, ev.payload, zone="America/New_York")
    assert ["d", "h6", 1.0, T0.timestamp()] in aggregates.event_ops(ev, ZONE)


def test_interactions_weigh_less_than_purchases() -> None:
    view = event("e", cid("1"), T0, Interaction(InteractionKind.VIEW, "gouda", "", Channel.WEB))
    ops = aggregates.event_ops(view, ZONE)
    [weight] = [op[2] for op in ops if op[1] == "pgouda"]
    assert weight == aggregates.INTERACTION_WEIGHTS[InteractionKind.VIEW]
    assert weight < aggregates.PURCHASE_LINE_WEIGHT  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (OfferResponseKind.SHOWN, "n2"),
        (OfferResponseKind.CLICKED, "r2"),
        (OfferResponseKind.REDEEMED, "r2"),
    ],
)
def test_offer_responses_count_impressions_and_responses(
    kind: OfferResponseKind, field: str
) -> None:
    ev = event("e", cid("1"), T0, OfferResponse(kind, "o1", "d1", Channel.PUSH))
    ops = aggregates.event_ops(ev, ZONE)
    assert ["d", field, 1.0, T0.timestamp()] in ops
    assert ["o", "o1", int(kind), T0.timestamp()] in ops


def test_a_dismissal_or_an_unknown_channel_changes_no_channel_stats() -> None:
    for payload in (
        OfferResponse(OfferResponseKind.DISMISSED, "o1", "", Channel.PUSH),
        OfferResponse(OfferResponseKind.CLICKED, "o1", "", Channel.UNSPECIFIED),
    ):
        ops = aggregates.event_ops(event("e", cid("1"), T0, payload), ZONE)
        assert not [op for op in ops if op[0] == "d" and str(op[1])[0] in "nr"]
        assert [op for op in ops if op[0] == "o"]  # the offer's history still counts it


def test_a_life_event_without_its_own_time_uses_the_event_time() -> None:
    ev = event("e", cid("1"), T0, LifeEvent(LifeEventKind.MOVED, None, "berlin-mitte"))
    assert ["l", "moved", T0.timestamp(), "berlin-mitte"] in aggregates.event_ops(ev, ZONE)


def test_support_sentiment_is_a_weighted_pair() -> None:
    ev = event("e", cid("1"), T0, SupportContact(-0.5, "late delivery", Channel.EMAIL))
    ops = aggregates.event_ops(ev, ZONE)
    assert ["d", "S", -0.5, T0.timestamp()] in ops
    assert ["d", "W", 1.0, T0.timestamp()] in ops


def _record(**fields: str) -> Record:
    return Record.parse(fields)


def test_sentiment_is_the_decayed_mean_of_contacts() -> None:
    older = aggregates.forward(1.0, 0.0, HALF_LIFE, HALF_LIFE)  # counts half
    newer = aggregates.forward(1.0, HALF_LIFE, HALF_LIFE, HALF_LIFE)
    record = _record(E=str(HALF_LIFE), S=str(-older + newer), W=str(older + newer))
    assert aggregates.sentiment(record) == pytest.approx((1 - 0.5) / (1 + 0.5))
    assert aggregates.sentiment(_record()) == 0.0


def test_affinities_are_decayed_to_now_and_ranked_highest_first() -> None:
    record = _record(E="0", cwine="4000", ccheese="6000")
    reader = aggregates.Reader(record, HALF_LIFE, HALF_LIFE)
    ranked = aggregates.ranked(reader.family("c"))
    assert [(a.key, a.score) for a in ranked] == [("cheese", 3.0), ("wine", 2.0)]


def test_responsiveness_is_smoothed_bounded_and_zero_without_data() -> None:
    assert aggregates.responsiveness(0.0, 0.0) == 0.0
    one_of_one = aggregates.responsiveness(1.0, 1.0)
    assert 0.0 < one_of_one < 0.5  # one click proves little
    assert aggregates.responsiveness(1000.0, 500.0) == pytest.approx(0.5, abs=0.01)
    assert aggregates.responsiveness(0.0, 3.0) <= 1.0


def test_channel_stats_pair_impressions_and_responses() -> None:
    record = _record(E="0", n2="4000", r2="1000", r3="500")
    stats = aggregates.channel_stats(aggregates.Reader(record, 0.0, HALF_LIFE))
    assert [(s.channel, s.impressions, s.responses) for s in stats] == [
        (Channel.PUSH, 4.0, 1.0),
        (Channel.EMAIL, 0.0, 0.5),
    ]


def test_active_hours_always_has_24_buckets() -> None:
    hours = aggregates.active_hours(aggregates.Reader(_record(E="0", h7="2000"), 0.0, HALF_LIFE))
    assert len(hours) == 24
    assert hours[7] == 2.0
    assert sum(hours) == 2.0


def test_offer_history_is_most_recent_first_with_decayed_dismissals() -> None:
    record = _record(E="0", ocoffee=OfferRecord(10, 0, 0, 20, 2000).encode(), otea="30,,,,")
    history = aggregates.offer_history(aggregates.Reader(record, HALF_LIFE, HALF_LIFE))
    assert [h.offer_id for h in history] == ["tea", "coffee"]
    coffee = history[1]
    assert (coffee.last_shown, coffee.last_clicked) == (aggregates.from_epoch(10), None)
    assert coffee.last_dismissed == aggregates.from_epoch(20)
    assert coffee.dismissals == pytest.approx(1.0)


def test_life_events_are_newest_first_and_bounded() -> None:
    records = aggregates.life_events([f"birthday|{i}|" for i in range(15)])
    assert len(records) == aggregates.MAX_LIFE_EVENTS
    assert records[0].time.timestamp() == 14.0


def test_home_store_prefers_the_latest_move_over_visits() -> None:
    visits = _record(E="0", **{"skoeln-dom": "9000"})
    assert aggregates.home_store(visits, aggregates.Reader(visits, 0, HALF_LIFE)) == "koeln-dom"
    moved = _record(E="0", H="berlin-mitte", T="5", **{"skoeln-dom": "9000"})
    assert aggregates.home_store(moved, aggregates.Reader(moved, 0, HALF_LIFE)) == "berlin-mitte"


def test_rfm_reads_counts_and_thousandths() -> None:
    rfm = aggregates.rfm(_record(P="100", N="3", M="12345"))
    assert rfm == Rfm(aggregates.from_epoch(100), 3, 12.345)
    assert aggregates.rfm(_record()) == Rfm()


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


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide"])
def test_local_hour_in_zones_off_the_whole_hour(zone: str) -> None:
    from zoneinfo import ZoneInfo

    start = datetime(2025, 3, 29, 0, 0, tzinfo=UTC)  # across Adelaide's and Europe's changes
    for minutes in range(0, 3 * 24 * 60, 7):
        time = start + timedelta(minutes=minutes)
        assert aggregates.local_hour(time, zone) == time.astimezone(ZoneInfo(zone)).hour


def test_fold_makes_one_update_per_field_relative_to_the_latest_event() -> None:
    t = T0.timestamp()
    events = [
        (t - HALF_LIFE, [["d", "ccheese", 1.0, t - HALF_LIFE], ["i", "N", 1], ["m", "P", t - 9]]),
        (t, [["d", "ccheese", 1.0, t], ["i", "N", 1], ["m", "P", t]]),
        # Dated a day ahead (clock drift): it decays as if it happened now.
        (t + DAY, [["o", "coffee", int(OfferResponseKind.DISMISSED), t + DAY]]),
        (t, [["l", "moved", t, "koeln-dom"]]),
    ]
    update = aggregates.fold(events, t, HALF_LIFE)
    assert update["t"] == t
    assert update["d"] == ["ccheese", 1_500_000]  # 1 + 1/2, in millionths
    assert update["i"] == ["N", 2]
    assert update["m"] == ["P", math.floor(t)]
    assert update["o"] == ["coffee", 0, 0, 0, math.floor(t + DAY), 1_000_000]
    assert update["l"] == ["moved", t, "koeln-dom"]
    assert aggregates.touched(update) == ["N", "P", "ccheese", "ocoffee"]
