"""The audit reads the streams and the checkpoint itself: losses it must find, none it invents."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from emma.faults.audit import (
    DECISION_STREAM,
    GROUP,
    MODEL_KEY,
    REWARD_STREAM,
    audit,
    backlog,
    backlog_by_stream,
    entries,
    learner_grace_s,
)
from emma.faults.load import ACTIVATE, DECIDE, REWARD, Call
from emma.learner.config import LearnerConfig
from emma.learner.join import Aggregation, DecisionEntry, Finished, Join, OutcomeEntry, entry_ms
from emma.runtime.redis_server import RedisServer

WINDOW_S = 4.0
WINDOW_MS = int(WINDOW_S * 1000)
GRACE_S = 2.0
GRACE_MS = int(GRACE_S * 1000)
DECIDED_MS = 100_000


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    yield connection
    connection.flushall()
    connection.close()


def decide(event_id: str, degraded: tuple[str, ...] = ()) -> Call:
    return Call(DECIDE, 0.0, 0.0, 0.01, degraded=degraded, event_id=event_id)


def reward(event_id: str, error: str = "") -> Call:
    return Call(REWARD, 0.0, 0.0, 0.01, error, event_id=event_id, key=f"{event_id}:reward")


def activate(event_id: str) -> Call:
    return Call(ACTIVATE, 0.0, 0.0, 0.01, event_id=event_id)


def log_decision(
    client: redis.Redis, event_id: str, at_ms: int, actions: int = 3, deferred: bool = False
) -> None:
    fields = {"event_id": event_id, "actions": actions, "deferred": int(deferred), "json": "{}"}
    client.xadd(DECISION_STREAM, fields, id=f"{at_ms}-0")


def log_activation(client: redis.Redis, event_id: str, at_ms: int) -> None:
    fields = {"event_id": event_id, "type": "activation", "json": "{}"}
    client.xadd(REWARD_STREAM, fields, id=f"{at_ms}-0")


def log_reward(client: redis.Redis, event_id: str, at_ms: int) -> None:
    fields = {"event_id": event_id, "type": "reward", "key": f"{event_id}:reward", "json": "{}"}
    client.xadd(REWARD_STREAM, fields, id=f"{at_ms}-0")


def checkpoint(client: redis.Redis, learned: int, rewarded: int) -> None:
    meta = {"updates": learned, "open_decisions": 0, "counts": {"learned": learned}}
    if rewarded:
        meta["counts"]["rewarded"] = rewarded
    client.hset(MODEL_KEY, "meta", json.dumps(meta))


def test_a_run_without_losses_audits_clean(client: redis.Redis) -> None:
    log_decision(client, "e1", 1_000)
    log_decision(client, "e2", 2_000)
    log_reward(client, "e1", 3_000)
    checkpoint(client, learned=2, rewarded=1)
    result = audit(client, [decide("e1"), decide("e2"), reward("e1")], WINDOW_S, timeout_s=1)
    assert result.caught_up
    assert (result.decisions_lost, result.rewards_lost) == (0, 0)
    assert (result.rewarded_expected, result.rewarded_learned) == (1, 1)
    assert result.rewards_not_learned == 0
    assert result.learned_twice == 0


def test_answered_decisions_and_acknowledged_rewards_missing_from_redis_are_lost(
    client: redis.Redis,
) -> None:
    log_decision(client, "e1", 1_000)
    checkpoint(client, learned=1, rewarded=0)
    calls = [decide("e1"), decide("gone", ("decision_log",)), decide("silent"), reward("e1")]
    result = audit(client, calls, WINDOW_S, timeout_s=1)
    assert result.decisions_lost == 2
    assert result.decisions_lost_flagged == 1
    assert result.lost_event_ids == {"gone", "silent"}
    assert result.rewards_lost == 1


def test_a_failed_reward_call_is_not_owed_but_a_late_reward_is_counted_apart(
    client: redis.Redis,
) -> None:
    log_decision(client, "e1", 1_000)
    log_decision(client, "e2", 1_000 + 1)
    # e2's reward arrives after its window: the learner owes it nothing.
    log_reward(client, "e2", 1_001 + int(WINDOW_S * 1000) + 1)
    checkpoint(client, learned=2, rewarded=0)
    calls = [decide("e1"), decide("e2"), reward("e1", error="DEADLINE_EXCEEDED"), reward("e2")]
    result = audit(client, calls, WINDOW_S, timeout_s=1)
    assert result.rewards_acknowledged == 1
    assert result.rewards_lost == 0
    assert result.rewards_late == 1
    assert result.rewarded_expected == 0


def test_more_updates_than_learnable_decisions_is_learning_twice(client: redis.Redis) -> None:
    log_decision(client, "e1", 1_000)
    log_decision(client, "fallback", 1_500, actions=1)
    checkpoint(client, learned=1, rewarded=0)
    client.hset(MODEL_KEY, "meta", json.dumps({"updates": 2, "open_decisions": 0, "counts": {}}))
    result = audit(client, [decide("e1"), decide("fallback")], WINDOW_S, timeout_s=1)
    assert result.learnable_logged == 1
    assert result.learned_twice == 1


def test_an_open_window_is_not_caught_up(client: redis.Redis) -> None:
    log_decision(client, "e1", 1_000)
    client.hset(MODEL_KEY, "meta", json.dumps({"updates": 0, "open_decisions": 1}))
    assert not audit(client, [decide("e1")], WINDOW_S, timeout_s=0.6).caught_up


@pytest.mark.parametrize(
    ("reward_ms", "owed", "late", "early"),
    [
        pytest.param(DECIDED_MS - GRACE_MS, 1, 0, 0, id="the grace before its decision"),
        pytest.param(DECIDED_MS - GRACE_MS - 1, 0, 0, 1, id="beyond the grace before it"),
        pytest.param(DECIDED_MS + WINDOW_MS, 1, 0, 0, id="at the window's end"),
        pytest.param(DECIDED_MS + WINDOW_MS + 1, 0, 1, 0, id="after the window"),
    ],
)
def test_a_reward_is_owed_only_within_the_learners_join_rule(
    client: redis.Redis, reward_ms: int, owed: int, late: int, early: int
) -> None:
    log_reward(client, "e1", reward_ms)
    log_decision(client, "e1", DECIDED_MS)
    checkpoint(client, learned=1, rewarded=owed)
    result = audit(client, [decide("e1"), reward("e1")], WINDOW_S, timeout_s=1, grace_s=GRACE_S)
    assert (result.rewarded_expected, result.rewards_late, result.rewards_early) == (
        owed,
        late,
        early,
    )
    assert result.rewards_not_learned == 0


def learn(client: redis.Redis, grace_s: float) -> Finished:
    """What the learner's join makes of the streams, read as a backlog (decisions first)."""
    join = Join(WINDOW_S, Aggregation.SUM, 0.0, grace_s=grace_s)
    step = Finished()
    last_ms = 0
    for entry_id, fields in entries(client, DECISION_STREAM):
        deferred = fields["deferred"] == "1"
        decision = DecisionEntry(entry_id, fields["event_id"], deferred, int(fields["actions"]))
        step.extend(join.decision(decision))
        last_ms = max(last_ms, entry_ms(entry_id))
    for entry_id, fields in entries(client, REWARD_STREAM):
        activation = fields["type"] == "activation"
        outcome = OutcomeEntry(entry_id, fields["event_id"], activation, 1.0, fields.get("key", ""))
        step.extend(join.outcome(outcome))
        last_ms = max(last_ms, entry_ms(entry_id))
    step.extend(join.expire(last_ms + GRACE_MS + 1))
    step.extend(join.close(last_ms + WINDOW_MS + 1))
    return step


def test_the_audit_owes_what_the_learners_join_learns_with_a_reward(client: redis.Redis) -> None:
    offsets = {
        "early-in-grace": -GRACE_MS,
        "early-beyond-grace": -GRACE_MS - 1,
        "in-window": 1,
        "window-end": WINDOW_MS,
        "late": WINDOW_MS + 1,
    }
    # Decisions 10 ms apart; each stream's entry ids must rise, so rewards go in time order.
    decided = {event_id: DECIDED_MS + 10 * i for i, event_id in enumerate(offsets)}
    for event_id, at_ms in decided.items():
        log_decision(client, event_id, at_ms)
    for at_ms, event_id in sorted((decided[e] + offset, e) for e, offset in offsets.items()):
        log_reward(client, event_id, at_ms)
    counts = learn(client, GRACE_S).counts
    checkpoint(client, learned=counts["learned"], rewarded=counts["rewarded"])
    calls = [c for e in offsets for c in (decide(e), reward(e))]
    result = audit(client, calls, WINDOW_S, timeout_s=1, grace_s=GRACE_S)
    assert (counts["rewarded"], counts["late"], counts["unknown"]) == (3, 1, 1)
    assert (result.rewarded_expected, result.rewarded_learned) == (3, 3)
    assert (result.rewards_late, result.rewards_early) == (1, 1)
    assert result.rewards_not_learned == 0
    assert result.learned == result.learnable_logged == 5


def test_a_deferred_decision_is_owed_only_once_activated_in_time(client: redis.Redis) -> None:
    # Shown and bought; shown too late; never shown; shown, but its activation went missing.
    for i, event_id in enumerate(("shown", "shown-late", "never-shown", "missing")):
        log_decision(client, event_id, DECIDED_MS + i, deferred=True)
    log_activation(client, "shown", DECIDED_MS + 10)
    log_reward(client, "shown", DECIDED_MS + 20)
    log_reward(client, "never-shown", DECIDED_MS + 30)
    log_activation(client, "shown-late", DECIDED_MS + 1 + WINDOW_MS + 1)
    counts = learn(client, GRACE_S).counts
    checkpoint(client, learned=counts["learned"], rewarded=counts["rewarded"])
    calls = [
        *(decide(e) for e in ("shown", "shown-late", "never-shown", "missing")),
        *(activate(e) for e in ("shown", "shown-late", "missing", "never-logged")),
        reward("shown"),
        reward("never-shown"),
    ]
    result = audit(client, calls, WINDOW_S, timeout_s=1, grace_s=GRACE_S)
    # The learner learns the activated one alone, with its reward; the audit owes the same.
    assert (counts["learned"], counts["rewarded"], counts["not_activated"]) == (1, 1, 3)
    assert result.learned == result.learnable_logged == 1
    assert (result.rewarded_expected, result.rewarded_learned) == (1, 1)
    # An activation of a decision never logged is not owed (the learner counts it unknown).
    assert (result.activations_acknowledged, result.activations_lost) == (3, 1)


def test_the_grace_is_the_learners_own_unless_the_run_sets_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EMMA_OUTCOME_GRACE_S", raising=False)
    assert learner_grace_s() == LearnerConfig().outcome_grace_s
    # The mesh's processes inherit the suite's environment: the learner would run with this.
    monkeypatch.setenv("EMMA_OUTCOME_GRACE_S", "0.5")
    assert learner_grace_s() == 0.5


def test_the_backlog_says_what_the_learner_was_given_and_what_it_has_not_read(
    client: redis.Redis,
) -> None:
    for at_ms in (1_000, 2_000, 3_000):
        log_decision(client, f"e{at_ms}", at_ms)
    log_reward(client, "e1000", 4_000)
    for stream in (DECISION_STREAM, REWARD_STREAM):
        client.xgroup_create(stream, GROUP, id="0")
    # The learner was given two decisions and acknowledged one; the reward is unread.
    [(_, given)] = client.xreadgroup(GROUP, "learner", {DECISION_STREAM: ">"}, count=2)
    client.xack(DECISION_STREAM, GROUP, given[0][0])
    assert backlog_by_stream(client) == {
        DECISION_STREAM: {"pending": 1, "unread": 1},
        REWARD_STREAM: {"pending": 0, "unread": 1},
    }
    assert backlog(client) == 3
    # Everything read and acknowledged: nothing left.
    for stream in (DECISION_STREAM, REWARD_STREAM):
        client.xreadgroup(GROUP, "learner", {stream: ">"})
        pending = client.xpending_range(stream, GROUP, "-", "+", 10)
        client.xack(stream, GROUP, *(entry["message_id"] for entry in pending))
    assert backlog_by_stream(client) == {
        DECISION_STREAM: {"pending": 0, "unread": 0},
        REWARD_STREAM: {"pending": 0, "unread": 0},
    }
