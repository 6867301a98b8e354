"""The reward join: first and sum, the default reward, late, duplicate and unknown outcomes."""

from __future__ import annotations

from emma.learner.join import (
    Aggregation,
    DecisionEntry,
    Join,
    Outcome,
    OutcomeEntry,
    Update,
)

WINDOW_S = 0.5  # 500 ms of stream time


def at(ms: int, seq: int = 0) -> str:
    return f"{ms}-{seq}"


def decision(ms: int, event_id: str, *, deferred: bool = False, actions: int = 3) -> DecisionEntry:
    return DecisionEntry(at(ms), event_id, deferred, actions)


def reward(ms: int, event_id: str, value: float = 1.0, key: str = "", seq: int = 0) -> OutcomeEntry:
    return OutcomeEntry(at(ms, seq), event_id, False, value, key)


def activation(ms: int, event_id: str) -> OutcomeEntry:
    return OutcomeEntry(at(ms), event_id, True)


def test_first_learns_at_the_first_reward_and_ignores_later_ones() -> None:
    join = Join(WINDOW_S, Aggregation.FIRST, default_reward=0.0)
    join.decision(decision(1000, "e1"))
    step = join.outcome(reward(1100, "e1", 2.5))
    assert step.updates == [Update(at(1000), "e1", 2.5, True)]
    assert (step.decision_acks, step.outcome_acks) == ([at(1000)], [at(1100)])
    later = join.outcome(reward(1200, "e1", 9.0))
    assert later.updates == [] and later.counts[Outcome.IGNORED] == 1
    assert later.outcome_acks == [at(1200)]
    assert len(join) == 0 and join.close(10_000).updates == []


def test_sum_learns_the_window_total_when_it_closes() -> None:
    join = Join(WINDOW_S, Aggregation.SUM, default_reward=0.0)
    join.decision(decision(1000, "e1"))
    assert join.outcome(reward(1100, "e1", 1.0)).updates == []
    assert join.outcome(reward(1500, "e1", 4.0, seq=1)).updates == []  # the window's last ms
    assert join.close(1500).updates == []  # rewards at 1500 may still be unread
    step = join.close(1501)
    assert step.updates == [Update(at(1000), "e1", 5.0, True)]
    assert step.outcome_acks == [at(1100), at(1500, 1)]


def test_outcomes_count_as_joined_with_their_acknowledgement() -> None:
    """A checkpoint taken while a decision is open neither acknowledges its rewards nor counts
    them: after a restart they are read and joined again, and counted only once."""
    join = Join(WINDOW_S, Aggregation.SUM, default_reward=0.0)
    join.decision(decision(1000, "e1"))
    assert join.outcome(reward(1100, "e1")).counts[Outcome.JOINED] == 0
    assert join.outcome(activation(1200, "e1")).counts[Outcome.JOINED] == 0
    assert join.close(2000).counts == {Outcome.JOINED: 2, Outcome.LEARNED: 1, Outcome.REWARDED: 1}


def test_a_decision_without_reward_learns_the_default_when_its_window_closes() -> None:
    join = Join(WINDOW_S, Aggregation.FIRST, default_reward=-0.1)
    join.decision(decision(1000, "quiet"))
    join.decision(decision(1400, "later"))
    step = join.close(1600)
    assert step.updates == [Update(at(1000), "quiet", -0.1, False)]
    assert len(join) == 1  # "later" is still open: its window ends at 1900


def test_late_rewards_are_dropped_whether_or_not_the_window_was_closed() -> None:
    join = Join(WINDOW_S, Aggregation.SUM, default_reward=0.0)
    join.decision(decision(1000, "e1"))
    join.decision(decision(1000, "e2", actions=4))
    # The learner lagged: the window is not closed yet, but the reward came after it.
    late = join.outcome(reward(1501, "e1", 3.0))
    assert late.counts[Outcome.LATE] == 1 and late.outcome_acks == [at(1501)]
    step = join.close(2000)
    assert {u.event_id: u.reward for u in step.updates} == {"e1": 0.0, "e2": 0.0}
    after = join.outcome(reward(2100, "e2"))
    assert after.counts[Outcome.LATE] == 1 and after.updates == []


def test_unknown_event_ids_are_dropped() -> None:
    join = Join(WINDOW_S, Aggregation.FIRST, default_reward=0.0)
    step = join.outcome(reward(1000, "nobody"))
    assert step.counts[Outcome.UNKNOWN] == 1
    assert step.outcome_acks == [at(1000)] and step.updates == []


def test_a_repeated_idempotency_key_counts_once() -> None:
    join = Join(WINDOW_S, Aggregation.SUM, default_reward=0.0)
    join.decision(decision(1000, "e1"))
    join.outcome(reward(1100, "e1", 2.0, key="order-1"))
    retry = join.outcome(reward(1110, "e1", 2.0, key="order-1"))
    assert retry.counts[Outcome.DUPLICATE] == 1 and retry.outcome_acks == [at(1110)]
    join.outcome(reward(1120, "e1", 3.0, key="order-2"))
    join.outcome(reward(1130, "e1", 1.0))  # no key: every call counts
    join.outcome(reward(1140, "e1", 1.0))
    assert join.close(5000).updates[0].reward == 7.0


def test_a_deferred_decision_is_learned_only_once_activated() -> None:
    join = Join(WINDOW_S, Aggregation.FIRST, default_reward=0.0)
    join.decision(decision(1000, "shown", deferred=True))
    join.decision(decision(1000, "never-shown", deferred=True, actions=5))
    assert join.outcome(reward(1100, "shown", 1.0)).updates == []  # not shown yet
    assert join.outcome(reward(1100, "never-shown", 1.0)).updates == []
    step = join.outcome(activation(1200, "shown"))
    assert step.updates == [Update(at(1000), "shown", 1.0, True)]
    assert step.outcome_acks == [at(1100), at(1200)]
    closed = join.close(5000)
    assert closed.updates == [] and closed.counts[Outcome.NOT_ACTIVATED] == 1
    # Its reward is acknowledged with it, and never learned.
    assert closed.decision_acks == [at(1000)] and closed.outcome_acks == [at(1100)]


def test_an_activated_deferred_decision_without_reward_learns_the_default() -> None:
    join = Join(WINDOW_S, Aggregation.FIRST, default_reward=0.0)
    join.decision(decision(1000, "e1", deferred=True))
    join.outcome(activation(1100, "e1"))
    assert join.outcome(activation(1150, "e1")).counts[Outcome.DUPLICATE] == 1
    assert join.close(5000).updates == [Update(at(1000), "e1", 0.0, False)]


def test_an_activation_after_the_window_does_not_count() -> None:
    join = Join(WINDOW_S, Aggregation.FIRST, default_reward=0.0)
    join.decision(decision(1000, "e1", deferred=True))
    assert join.outcome(activation(1600, "e1")).counts[Outcome.LATE] == 1
    assert join.close(5000).counts[Outcome.NOT_ACTIVATED] == 1


def test_single_action_decisions_teach_nothing() -> None:
    join = Join(WINDOW_S, Aggregation.FIRST, default_reward=0.0)
    step = join.decision(decision(1000, "fallback", actions=1))
    assert step.counts[Outcome.NO_CHOICE] == 1 and step.decision_acks == [at(1000)]
    assert join.outcome(reward(1100, "fallback")).counts[Outcome.IGNORED] == 1
    assert join.close(9000).updates == []


def test_a_repeated_decision_is_a_duplicate() -> None:
    join = Join(WINDOW_S, Aggregation.FIRST, default_reward=0.0)
    join.decision(decision(1000, "e1"))
    again = join.decision(decision(1001, "e1"))
    assert again.counts[Outcome.DUPLICATE] == 1 and again.decision_acks == [at(1001)]
    assert len(join) == 1
