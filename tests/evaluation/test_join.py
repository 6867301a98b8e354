"""The reward join: windows, sums, activations, fallbacks, duplicates and unknown event ids."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from emma.evaluation.join import join
from emma.evaluation.records import (
    LogFormatError,
    LoggedEvent,
    Outcome,
    entry_time,
    parse_decision,
    parse_outcome,
)

from .synthetic import OFFERS, START, decision_line

WINDOW_S = 600.0


def decision(
    event_id: str, *, deferred: bool = False, pmf: list[float] | None = None
) -> LoggedEvent:
    return parse_decision(decision_line(event_id, 0, 1, deferred=deferred, pmf=pmf))


def reward(event_id: str, value: float, after_s: float = 1.0) -> Outcome:
    return Outcome(event_id, False, value, START + timedelta(seconds=after_s))


def activation(event_id: str, after_s: float = 1.0) -> Outcome:
    return Outcome(event_id, True, 0.0, START + timedelta(seconds=after_s))


def test_a_logged_line_reads_back_in_model_order() -> None:
    line = decision_line("e1", 2, 2, pmf=[0.1, 0.2, 0.6, 0.1])
    assert line["a"][0] == 3  # chosen first in DSJSON
    event = parse_decision(line)
    assert event.chosen == 2
    assert event.pmf == (0.1, 0.2, 0.6, 0.1)
    assert event.propensity == 0.6
    assert [event.offer_id(i) for i in range(4)] == list(OFFERS)
    assert event.channel(0) == "in_app"
    assert event.shared["U"] == {"type=u2": 1.0}
    assert event.timestamp == START
    assert event.model_version == "online-1"


def test_rewards_of_one_decision_are_summed_and_a_missing_one_is_the_default() -> None:
    events = [decision("a"), decision("b"), decision("c")]
    outcomes = [reward("a", 1.0), reward("a", 2.5, after_s=30), reward("c", 0.0)]
    joined, stats = join(events, outcomes, window_s=WINDOW_S, default_reward=-0.5)
    assert [(j.event.event_id, j.reward, j.rewarded) for j in joined] == [
        ("a", 3.5, True),
        ("b", -0.5, False),
        ("c", 0.0, True),
    ]
    assert (stats.decisions, stats.evaluated, stats.rewarded) == (3, 3, 2)


def test_rewards_after_the_window_do_not_count() -> None:
    joined, stats = join(
        [decision("a")],
        [reward("a", 1.0, after_s=10), reward("a", 5.0, after_s=WINDOW_S + 1)],
        window_s=WINDOW_S,
    )
    assert joined[0].reward == 1.0
    assert stats.late_outcomes == 1


def test_deferred_decisions_count_only_when_activated_within_the_window() -> None:
    events = [
        decision("shown", deferred=True),
        decision("never", deferred=True),
        decision("late", deferred=True),
    ]
    outcomes = [
        reward("shown", 1.0, after_s=5),
        activation("shown", after_s=10),  # a reward may arrive before its activation
        reward("never", 1.0),
        activation("late", after_s=WINDOW_S + 60),
    ]
    joined, stats = join(events, outcomes, window_s=WINDOW_S)
    assert [(j.event.event_id, j.reward) for j in joined] == [("shown", 1.0)]
    assert stats.not_activated == 2
    assert stats.evaluated == 1


def test_fallbacks_duplicates_and_unknown_event_ids_are_left_out_and_counted() -> None:
    fallback_line = decision_line("fb", 0, 0)
    fallback_line["c"] = {"U": {}, "_multi": [{"A": {"offer=loyalty": 1.0}}]}
    fallback_line["a"], fallback_line["p"] = [1], [1.0]
    events = [decision("a"), decision("a"), parse_decision(fallback_line)]
    outcomes = [reward("a", 1.0), reward("ghost", 1.0), reward("ghost", 2.0)]
    joined, stats = join(events, outcomes, window_s=WINDOW_S)
    assert [j.event.event_id for j in joined] == ["a"]
    assert joined[0].reward == 1.0
    assert (stats.duplicate_decisions, stats.single_action, stats.unknown_outcomes) == (1, 1, 2)


def test_reward_stream_lines_parse_as_the_service_writes_them() -> None:
    value = parse_outcome(
        {"EventId": "e", "v": 2.5, "kind": "redeem", "Timestamp": "2026-03-01T09:00:01.000Z"},
        "reward",
    )
    assert (value.event_id, value.activation, value.value) == ("e", False, 2.5)
    assert value.timestamp == START + timedelta(seconds=1)
    shown = parse_outcome(
        {"EventId": "e", "ActionTaken": True, "Timestamp": "2026-03-01T09:00:00.000Z"}, "activation"
    )
    assert shown.activation and shown.value == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"EventId": ""}, "no EventId"),
        ({"a": [1, 1, 2, 3]}, "each of the 4 actions once"),
        ({"p": [0.5, 0.5]}, "4 probabilities"),
        ({"p": [0.0, 0.5, 0.25, 0.25]}, "probability 0"),
        ({"c": {"U": {}}}, "_multi"),
    ],
)
def test_malformed_decision_lines_are_reported(change: dict[str, object], message: str) -> None:
    line = {**decision_line("e", 0, 1), **change}
    with pytest.raises(LogFormatError, match=message):
        parse_decision(line)


def test_a_reward_that_is_not_a_number_is_reported() -> None:
    with pytest.raises(LogFormatError, match="v must be"):
        parse_outcome({"EventId": "e", "v": "lots"})


def test_the_window_uses_redis_clock_when_both_sides_were_read_from_the_streams() -> None:
    """A caller's request time may be days off; the learner's clock is Redis's, so is ours."""
    logged = dataclasses.replace(decision("a"), logged_at=START + timedelta(days=30))
    prompt = Outcome(
        "a", False, 1.0, START + timedelta(days=2), START + timedelta(days=30, seconds=5)
    )
    late = Outcome("a", False, 2.0, START + timedelta(seconds=5), START + timedelta(days=31))
    joined, stats = join([logged], [prompt, late], window_s=WINDOW_S)
    assert joined[0].reward == 1.0
    assert stats.late_outcomes == 1


def test_stream_entry_ids_are_redis_milliseconds() -> None:
    assert entry_time("1772355600000-3") == START
    assert entry_time("not-an-id") is None
