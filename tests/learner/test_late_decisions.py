"""A decision whose entry reaches its stream after an outcome for it: held, joined, learned once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from emma.cli.health import wait_serving
from emma.decision.decision_log import DecisionStore
from emma.learner import SERVICE_NAME
from emma.learner.join import Update
from emma.learner.learner import Learner
from emma.learner.metrics import LearnerGauges
from emma.learner.snapshots import read_snapshot
from emma.learner.tasks import cancel
from emma.runtime.redis_server import free_port

from .conftest import (
    StartLearner,
    learner_config,
    log_decision,
    pending,
    until,
    wait_for_snapshot,
)
from .test_metrics import gauges
from .test_process import start

Learned = list[tuple[str, float]]


@pytest.fixture
def learned(monkeypatch: pytest.MonkeyPatch) -> Iterator[Learned]:
    """Every (event id, reward) any learner in this process hands to VW."""
    seen: Learned = []
    lines = Learner._lines

    async def spy(self: Learner, updates: list[Update]) -> object:
        seen.extend((update.event_id, update.reward) for update in updates)
        return await lines(self, updates)

    monkeypatch.setattr(Learner, "_lines", spy)
    yield seen


async def reward(store: DecisionStore, event_id: str, value: float) -> None:
    # Another replica's Reward: recorded although this event id is not logged yet.
    assert not await store.reward(event_id, value, "click", datetime.now(UTC))


async def test_a_reward_logged_before_its_decision_is_learned_with_its_value(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner, learned: Learned
) -> None:
    learner = await start_learner(outcome_grace_s=5.0)
    event_id = uuid.uuid4().hex
    await reward(store, event_id, 3.5)
    await until(lambda: learner.join.held == 1)  # read, and nothing to join it to yet
    await asyncio.sleep(0.2)
    await log_decision(store, 1, event_id=event_id)  # the buffered entry, written late
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 1)
    assert learned == [(event_id, 3.5)]
    assert snapshot.meta["counts"] == {"learned": 1, "rewarded": 1, "joined": 1}
    assert snapshot.meta["held_outcomes"] == 0
    assert await pending(raw) == 0


async def test_an_outcome_whose_decision_never_comes_counts_unknown_after_the_grace(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner, learned: Learned
) -> None:
    grace_s = 1.0
    learner = await start_learner(outcome_grace_s=grace_s)
    event_id = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    written = loop.time()
    await reward(store, event_id, 2.0)
    await until(lambda: learner.join.held == 1)
    await asyncio.sleep(grace_s / 2)
    assert learner.join.held == 1 and learner.counts["unknown"] == 0
    assert await pending(raw) == 1  # held outcomes stay unacknowledged
    await until(lambda: learner.counts["unknown"] == 1)
    assert loop.time() - written >= grace_s * 0.9
    assert learner.join.held == 0
    await until(lambda: learner.outcome_acks == [])  # the acknowledgement was checkpointed
    assert await pending(raw) == 0
    # Its decision, logged after the grace, is learned with the default reward.
    await log_decision(store, 0, event_id=event_id)
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 1)
    assert learned == [(event_id, 0.0)]
    assert snapshot.meta["counts"] == {"learned": 1, "unknown": 1}


@pytest.mark.parametrize("crash", [True, False], ids=["killed", "stopped"])
async def test_a_held_outcome_survives_a_restart_and_is_learned_once(
    crash: bool,
    store: DecisionStore,
    raw: aioredis.Redis,
    redis_url: str,
    start_learner: StartLearner,
    learned: Learned,
) -> None:
    """The first learner checkpoints while it holds the outcome, then dies (no final
    checkpoint, its lease left to expire) or stops (with one); the decision comes after."""
    client = aioredis.Redis.from_url(redis_url)
    first = Learner(learner_config(redis_url, outcome_grace_s=10.0), client)
    task = asyncio.create_task(first.run())
    late = uuid.uuid4().hex
    await reward(store, late, 2.0)
    await until(lambda: first.join.held == 1)
    other = await log_decision(store, 0)
    await store.reward(other, 1.0, "click", datetime.now(UTC))
    checkpoint = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 1)
    assert checkpoint.meta["held_outcomes"] == 1
    assert await pending(raw) == 1  # the checkpoint acknowledged all but the held outcome
    if crash:
        await cancel(task)
    else:
        await first.stop()
        await asyncio.wait_for(task, 10)
    await client.connection_pool.disconnect()
    await log_decision(store, 2, event_id=late)

    second = await start_learner(outcome_grace_s=10.0)
    await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 2)
    await second.stop()
    final = await read_snapshot(raw, "emma:model")
    assert final is not None
    assert final.meta["updates"] == 2
    assert final.meta["counts"] == {"learned": 2, "rewarded": 2, "joined": 2}
    assert sorted(learned) == sorted([(other, 1.0), (late, 2.0)])
    assert await pending(raw) == 0


async def test_a_full_hold_counts_its_oldest_outcome_unknown_and_says_so(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner, learned: Learned
) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    learner = await start_learner(outcome_grace_s=10.0, held_outcomes_max=2)
    LearnerGauges(learner, provider.get_meter("test"))
    event_ids = [uuid.uuid4().hex for _ in range(3)]
    for value, event_id in enumerate(event_ids, start=1):
        await reward(store, event_id, float(value))
    await until(lambda: learner.counts["held_overflow"] == 1)
    seen = gauges(reader)
    assert (seen["emma.learner.held_outcomes"], seen["emma.learner.held_overflow"]) == (2, 1)
    for event_id in event_ids:
        await log_decision(store, 1, event_id=event_id)
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 3)
    # The oldest was pushed out before its decision came: learned with the default reward.
    assert dict(learned) == {event_ids[0]: 0.0, event_ids[1]: 2.0, event_ids[2]: 3.0}
    counts = snapshot.meta["counts"]
    assert (counts["unknown"], counts["held_overflow"], counts["rewarded"]) == (1, 1, 2)
    assert gauges(reader)["emma.learner.held_outcomes"] == 0
    provider.shutdown()


async def test_a_sigkilled_learner_process_keeps_its_held_outcome(
    store: DecisionStore, raw: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "learner.log"
    grace = {"EMMA_OUTCOME_GRACE_S": "30"}
    late = uuid.uuid4().hex
    first = start(redis_url, port, log, **grace)
    try:
        assert await asyncio.to_thread(wait_serving, f"127.0.0.1:{port}", SERVICE_NAME, 30)
        await reward(store, late, 4.0)
        other = await log_decision(store, 0)
        await store.reward(other, 1.0, "click", datetime.now(UTC))
        # Checkpointed while holding the outcome, which stays pending.
        await wait_for_snapshot(raw, lambda s: s.meta.get("held_outcomes") == 1, within_s=20)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    await log_decision(store, 1, event_id=late)

    second = start(redis_url, port, log, **grace)
    try:
        await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 2, within_s=30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0, log.read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    final = await read_snapshot(raw, "emma:model")
    assert final is not None
    assert final.meta["counts"] == {"learned": 2, "rewarded": 2, "joined": 2}
    assert final.meta["held_outcomes"] == 0
    assert await pending(raw) == 0
