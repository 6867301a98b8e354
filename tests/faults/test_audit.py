"""The audit reads the streams and the checkpoint itself: losses it must find, none it invents."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from emma.faults.audit import DECISION_STREAM, MODEL_KEY, REWARD_STREAM, audit
from emma.faults.load import DECIDE, REWARD, Call
from emma.runtime.redis_server import RedisServer

WINDOW_S = 4.0


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


def log_decision(client: redis.Redis, event_id: str, at_ms: int, actions: int = 3) -> None:
    fields = {"event_id": event_id, "actions": actions, "deferred": 0, "json": "{}"}
    client.xadd(DECISION_STREAM, fields, id=f"{at_ms}-0")


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
