"""The reward join: windows, grace, sums, activations, fallbacks, duplicates, unknown event ids."""

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
from emma.learner.join import Aggregation, DecisionEntry, Join, OutcomeEntry

from .synthetic import OFFERS, START, decision_line

WINDOW_S = 600.0
GRACE_S = 10.0


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
    joined, stats = join(events, outcomes, window_s=WINDOW_S, grace_s=GRACE_S, default_reward=-0.5)
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
        grace_s=GRACE_S,
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
    joined, stats = join(events, outcomes, window_s=WINDOW_S, grace_s=GRACE_S)
    assert [(j.event.event_id, j.reward) for j in joined] == [("shown", 1.0)]
    assert stats.not_activated == 2
    assert stats.evaluated == 1


def test_fallbacks_duplicates_and_unknown_event_ids_are_left_out_and_counted() -> None:
    fallback_line = decision_line("fb", 0, 0)
    fallback_line["c"] = {"U": {}, "_multi": [{"A": {"offer=loyalty": 1.0}}]}
    fallback_line["a"], fallback_line["p"] = [1], [1.0]
    events = [decision("a"), decision("a"), parse_decision(fallback_line)]
    outcomes = [reward("a", 1.0), reward("ghost", 1.0), reward("ghost", 2.0)]
    joined, stats = join(events, outcomes, window_s=WINDOW_S, grace_s=GRACE_S)
    assert [j.event.event_id for j in joined] == ["a"]
    assert joined[0].reward == 1.0
    assert (stats.duplicate_decisions, stats.single_action, stats.unknown_outcomes) == (1, 1, 2)


def test_reward_stream_lines_parse_as_the_service_writes_them() -> None:
    value = parse_outcome(
        {
            "EventId": "e",
            "v": 2.5,
            "kind": "redeem",
            "Timestamp": "2026-03-01T09:00:01.000Z",
            "key": "redeem:ev-1",
        },
        "reward",
    )
    assert (value.event_id, value.activation, value.value) == ("e", False, 2.5)
    assert value.key == "redeem:ev-1"
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
    joined, stats = join([logged], [prompt, late], window_s=WINDOW_S, grace_s=GRACE_S)
    assert joined[0].reward == 1.0
    assert stats.late_outcomes == 1


def test_stream_entry_ids_are_redis_milliseconds() -> None:
    assert entry_time("1772355600000-3") == START
    assert entry_time("not-an-id") is None


def logged(event_id: str, at_s: float, *, deferred: bool = False) -> LoggedEvent:
    """A decision read from the stream, its entry `at_s` seconds after START."""
    return dataclasses.replace(
        decision(event_id, deferred=deferred), logged_at=START + timedelta(seconds=at_s)
    )


def streamed(event_id: str, value: float, at_s: float, *, activation: bool = False) -> Outcome:
    """An outcome read from the stream, its entry `at_s` seconds after START."""
    return Outcome(event_id, activation, value, START, START + timedelta(seconds=at_s))


def test_an_outcome_before_its_decision_joins_only_within_the_grace() -> None:
    """A replica may write a decision late from its buffer; the learner waits the grace."""
    events = [
        logged("within", GRACE_S),
        logged("beyond", GRACE_S + 0.001),
        logged("shown", GRACE_S, deferred=True),
        logged("hidden", GRACE_S + 0.001, deferred=True),
    ]
    outcomes = [
        streamed("within", 1.0, 0),
        streamed("beyond", 1.0, 0),
        streamed("shown", 0.0, 0, activation=True),
        streamed("shown", 2.0, 1),
        streamed("hidden", 0.0, 0, activation=True),
    ]
    joined, stats = join(events, outcomes, window_s=WINDOW_S, grace_s=GRACE_S)
    assert [(j.event.event_id, j.reward, j.rewarded) for j in joined] == [
        ("within", 1.0, True),
        ("beyond", 0.0, False),
        ("shown", 2.0, True),
    ]
    # As the learner counts them: no decision came within their grace.
    assert (stats.unknown_outcomes, stats.late_outcomes, stats.not_activated) == (2, 0, 1)


def test_no_grace_joins_no_outcome_logged_before_its_decision() -> None:
    events = [logged("same", 5), logged("after", 5.001)]
    outcomes = [streamed("same", 1.0, 5), streamed("after", 1.0, 5)]
    joined, stats = join(events, outcomes, window_s=WINDOW_S, grace_s=0)
    assert [j.rewarded for j in joined] == [True, False]
    assert stats.unknown_outcomes == 1


def learned(decision_ms: int, outcome_ms: int, *, backlog: bool) -> tuple[bool, set[str]]:
    """Whether the learner's own join learns the decision with the outcome, and what it
    counted: live, it reads the two entries in stream order; from a backlog (a restart),
    every decision before any outcome."""
    learner = Join(WINDOW_S, Aggregation.SUM, 0.0, grace_s=GRACE_S)
    decision_entry = DecisionEntry(f"{decision_ms}-0", "e", False, 4)
    outcome_entry = OutcomeEntry(f"{outcome_ms}-0", "e", False, 1.0)
    if outcome_ms < decision_ms and not backlog:
        steps = [learner.outcome(outcome_entry), learner.decision(decision_entry)]
    else:
        steps = [learner.decision(decision_entry), learner.outcome(outcome_entry)]
    end = max(decision_ms, outcome_ms) + int((WINDOW_S + GRACE_S) * 1000) + 1
    steps += [learner.expire(end), learner.close(end)]
    updates = [update for step in steps for update in step.updates]
    counts = {str(name) for step in steps for name, count in step.counts.items() if count}
    return [u.rewarded for u in updates] == [True], counts


@pytest.mark.parametrize("backlog", [False, True], ids=["live", "backlog"])
@pytest.mark.parametrize(
    ("offset_ms", "counts"),
    [(-10_001, False), (-10_000, True), (-1, True), (0, True), (600_000, True), (600_001, False)],
    ids=lambda value: (
        ("joins" if value else "dropped") if isinstance(value, bool) else f"{value:+}ms"
    ),
)
def test_the_join_counts_an_outcome_exactly_when_the_learner_learns_it(
    offset_ms: int, counts: bool, backlog: bool
) -> None:
    decision_ms = 1_772_355_600_000
    rewarded, learner_counts = learned(decision_ms, decision_ms + offset_ms, backlog=backlog)
    assert rewarded == counts
    event = dataclasses.replace(decision("e"), logged_at=entry_time(f"{decision_ms}-0"))
    outcome = Outcome("e", False, 1.0, START, entry_time(f"{decision_ms + offset_ms}-0"))
    joined, stats = join([event], [outcome], window_s=WINDOW_S, grace_s=GRACE_S)
    assert joined[0].rewarded == counts
    assert (stats.unknown_outcomes, stats.late_outcomes) == (
        int("unknown" in learner_counts),
        int("late" in learner_counts),
    )


def test_a_retried_reward_counts_once_as_the_learner_counts_it() -> None:
    """Reward's retries repeat their idempotency key; rewards without one always count."""
    sent = [("k1", 1.0), ("k1", 1.0), ("k2", 2.0), ("", 0.5), ("", 0.5)]
    learner = Join(WINDOW_S, Aggregation.SUM, 0.0, grace_s=GRACE_S)
    steps = [learner.decision(DecisionEntry("1000-0", "e", False, 4))]
    steps += [
        learner.outcome(OutcomeEntry(f"{2000 + i}-0", "e", False, value, key))
        for i, (key, value) in enumerate(sent)
    ]
    steps.append(learner.close(10**9))
    [update] = [update for step in steps for update in step.updates]

    outcomes = [
        Outcome("e", False, value, START, entry_time(f"{2000 + i}-0"), key=key)
        for i, (key, value) in enumerate(sent)
    ]
    event = dataclasses.replace(decision("e"), logged_at=entry_time("1000-0"))
    [joined], stats = join([event], outcomes, window_s=WINDOW_S, grace_s=GRACE_S)
    assert joined.reward == 4.0 == update.reward
    assert stats.duplicate_rewards == 1
