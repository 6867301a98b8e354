"""Outcomes logged before their decision: held for the grace, joined, expired or pushed out."""

from __future__ import annotations

import pytest

from emma.learner.held import Held
from emma.learner.join import Aggregation, Join, Outcome, Update

from .test_join import activation, at, decision, reward

WINDOW_S = 0.5  # 500 ms of stream time
GRACE_S = 0.2  # 200 ms


def grace_join(aggregation: Aggregation = Aggregation.SUM, held_max: int = 100) -> Join:
    return Join(WINDOW_S, aggregation, default_reward=0.0, grace_s=GRACE_S, held_max=held_max)


def test_held_items_leave_by_event_by_grace_and_by_cap() -> None:
    held: Held[str] = Held(grace_ms=100, cap=3)
    assert held.add("e1", 1000, "a") == []
    assert held.add("e2", 1010, "b") == []
    assert held.add("e1", 1020, "c") == []
    assert held.take("e1") == ["a", "c"] and len(held) == 1
    assert held.take("e1") == []
    assert held.expire(1110) == []  # 1010 + 100 is still within the grace
    assert held.expire(1111) == ["b"] and len(held) == 0
    for number, event_id in enumerate(("x", "y", "x", "z")):
        pushed = held.add(event_id, 2000 + number, event_id + str(number))
    assert pushed == ["x0"]  # the oldest goes first
    assert held.take("x") == ["x2"] and held.take("z") == ["z3"] and len(held) == 1
    with pytest.raises(ValueError, match="cap"):
        Held(grace_ms=100, cap=0)


def test_a_reward_before_its_decision_joins_it_with_the_decisions_own_window() -> None:
    join = grace_join()
    step = join.outcome(reward(1000, "e1", 2.5))
    # Held: neither acknowledged nor counted.
    assert (step.outcome_acks, dict(step.counts), join.held) == ([], {}, 1)
    assert join.expire(1200).outcome_acks == []  # the grace ends at 1200: a decision may come
    assert join.decision(decision(1200, "e1")).updates == []
    assert join.held == 0
    # The window runs from the decision's entry (1200 to 1700), not from the reward's.
    assert join.outcome(reward(1650, "e1", 1.0)).counts == {}
    assert join.close(1700).updates == []
    closed = join.close(1701)
    assert closed.updates == [Update(at(1200), "e1", 3.5, True)]
    assert closed.outcome_acks == [at(1000), at(1650)]
    assert closed.counts[Outcome.JOINED] == 2 and closed.counts[Outcome.UNKNOWN] == 0


def test_with_first_a_held_reward_is_learned_when_its_decision_arrives() -> None:
    join = grace_join(Aggregation.FIRST)
    join.outcome(reward(1000, "e1", 4.0))
    join.outcome(reward(1050, "e1", 9.0, seq=1))
    step = join.decision(decision(1100, "e1"))
    assert step.updates == [Update(at(1100), "e1", 4.0, True)]
    # The second reward came after the first, in the decision's window: ignored, as ever.
    assert step.counts[Outcome.IGNORED] == 1
    assert sorted(step.outcome_acks) == [at(1000), at(1050, 1)]


def test_held_outcomes_of_a_deferred_decision_wait_for_it_like_any_other() -> None:
    join = grace_join(Aggregation.FIRST)
    join.outcome(reward(1000, "e1", 1.5))
    join.outcome(activation(1010, "e1"))
    step = join.decision(decision(1100, "e1", deferred=True))
    assert step.updates == [Update(at(1100), "e1", 1.5, True)]


def test_an_outcome_counts_unknown_once_its_grace_has_passed() -> None:
    join = grace_join()
    join.outcome(reward(1000, "gone", 3.0))
    expired = join.expire(1201)
    assert expired.counts == {Outcome.UNKNOWN: 1} and expired.outcome_acks == [at(1000)]
    assert join.held == 0
    # Its decision, logged after the grace, is learned with the default reward.
    join.decision(decision(1201, "gone"))
    assert join.close(1702).updates == [Update(at(1201), "gone", 0.0, False)]


@pytest.mark.parametrize(("decision_ms", "joined"), [(1200, True), (1201, False)])
def test_a_backlog_read_decision_first_joins_exactly_as_a_live_learner_would(
    decision_ms: int, joined: bool
) -> None:
    """Read from a backlog, the decision comes before the reward logged ahead of it: the
    grace is still measured between their entries, so the join does not depend on reading."""
    backlog = grace_join()
    backlog.decision(decision(decision_ms, "e1"))
    counted = backlog.outcome(reward(1000, "e1", 2.0)).counts
    live = grace_join()
    live.outcome(reward(1000, "e1", 2.0))
    counted.update(live.expire(decision_ms).counts)  # all decisions before it were read
    live.decision(decision(decision_ms, "e1"))
    for join in (backlog, live):
        (update,) = join.close(decision_ms + 501).updates
        assert update.reward == (2.0 if joined else 0.0)
    assert counted[Outcome.UNKNOWN] == (0 if joined else 2)


def test_a_full_hold_counts_its_oldest_unknown_at_once() -> None:
    join = grace_join(held_max=2)
    join.outcome(reward(1000, "e1", 1.0))
    join.outcome(reward(1001, "e2", 2.0))
    step = join.outcome(reward(1002, "e3", 3.0))
    assert step.counts == {Outcome.UNKNOWN: 1, Outcome.HELD_OVERFLOW: 1}
    assert step.outcome_acks == [at(1000)] and join.held == 2
    for number, event_id in enumerate(("e1", "e2", "e3")):
        join.decision(decision(1010 + number, event_id))
    rewards = {update.event_id: update.reward for update in join.close(2000).updates}
    assert rewards == {"e1": 0.0, "e2": 2.0, "e3": 3.0}


def test_without_a_grace_an_unknown_outcome_is_dropped_at_once() -> None:
    join = Join(WINDOW_S, Aggregation.SUM, default_reward=0.0, grace_s=0.0)
    step = join.outcome(reward(1000, "nobody"))
    assert step.counts == {Outcome.UNKNOWN: 1} and join.held == 0
