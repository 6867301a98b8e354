"""The learner against a real Redis: joins, learns, checkpoints and publishes exactly once."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import redis.asyncio as aioredis

from emma.decision.bandit import Model
from emma.decision.config import DEFAULT_VW_ARGS
from emma.decision.decision_log import DecisionStore
from emma.decision.features import shared_line, vw_lines
from emma.decision.log_line import LINE_FIELD, PLAIN_LINE_FIELD, line_text
from emma.learner.learner import Learner
from emma.learner.snapshots import read_snapshot
from emma.learner.tasks import cancel

from .conftest import (
    ACTIONS,
    SHARED,
    WINDOW_S,
    StartLearner,
    learner_config,
    log_decision,
    pending,
    wait_for_snapshot,
)


def preferred(data: bytes) -> list[float]:
    model = Model.from_bytes(DEFAULT_VW_ARGS, data, "test")
    lines = vw_lines(SHARED, ACTIONS)
    pmf = model.predict(shared_line(SHARED), lines[1:])
    model.close()
    return pmf


async def test_rewards_are_learned_at_once_and_published(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner
) -> None:
    await start_learner()
    for round_ in range(30):
        chosen = round_ % 3
        event_id = await log_decision(store, chosen)
        # The wine offer pays; everything else is told 0 explicitly.
        await store.reward(event_id, 1.0 if chosen == 1 else 0.0, "click", datetime.now(UTC))
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 30)
    assert snapshot.meta["counts"]["learned"] == 30
    assert snapshot.meta["counts"]["joined"] == 30
    assert snapshot.meta["vw_args"] == DEFAULT_VW_ARGS
    pmf = preferred(snapshot.data)
    assert pmf[1] == max(pmf) and pmf[1] > 0.8
    # Learned at the first reward, well before the 0.5 s window closed, and acknowledged.
    assert await pending(raw) == 0


async def test_a_decision_without_reward_learns_the_default_when_the_window_closes(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner
) -> None:
    await start_learner()
    await log_decision(store, 0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 1)
    assert loop.time() - started >= WINDOW_S * 0.8
    assert snapshot.meta["counts"] == {"learned": 1}
    assert await pending(raw) == 0


async def test_sum_waits_for_the_window_and_learns_the_total(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner
) -> None:
    learner = await start_learner(aggregation="sum")
    event_id = await log_decision(store, 2)
    await store.reward(event_id, 1.0, "click", datetime.now(UTC))
    await store.reward(event_id, 4.0, "redeem", datetime.now(UTC), key="order-1")
    await store.reward(event_id, 4.0, "redeem", datetime.now(UTC), key="order-1")  # a retry
    await asyncio.sleep(WINDOW_S / 3)
    assert learner.updates == 0  # the window is still open
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 1)
    assert snapshot.meta["counts"]["duplicate"] == 1
    assert snapshot.meta["counts"]["joined"] == 2


async def test_late_duplicate_and_unknown_rewards_teach_nothing(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner
) -> None:
    await start_learner(aggregation="sum")
    event_id = await log_decision(store, 1)
    await store.reward(event_id, 1.0, "click", datetime.now(UTC), key="k")
    await store.reward(event_id, 1.0, "click", datetime.now(UTC), key="k")
    await store.reward("f" * 32, 1.0, "click", datetime.now(UTC))
    await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 1)
    await store.reward(event_id, 5.0, "redeem", datetime.now(UTC))  # after the window
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["counts"].get("late") == 1)
    assert snapshot.meta["updates"] == 1
    counts = snapshot.meta["counts"]
    assert (counts["duplicate"], counts["unknown"], counts["joined"]) == (1, 1, 1)
    await asyncio.sleep(0.3)
    assert await pending(raw) == 0


async def test_a_deferred_decision_is_learned_only_if_activated(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner
) -> None:
    await start_learner()
    shown = await log_decision(store, 0, deferred=True)
    hidden = await log_decision(store, 1, deferred=True)
    for event_id in (shown, hidden):
        await store.reward(event_id, 1.0, "click", datetime.now(UTC))
    await store.activate(shown, datetime.now(UTC))
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["counts"].get("not_activated") == 1)
    assert snapshot.meta["updates"] == 1
    assert snapshot.meta["counts"]["learned"] == 1


async def test_a_restarted_learner_loses_nothing_and_learns_nothing_twice(
    store: DecisionStore, raw: aioredis.Redis, redis_url: str
) -> None:
    """Learners are cancelled at random points while decisions and rewards keep coming,
    as a crash would stop them: no final checkpoint, the lease left to expire."""
    rng = random.Random(7)
    total = 90
    event_ids: list[str] = []

    async def produce() -> None:
        for round_ in range(total):
            chosen = round_ % 3
            event_id = await log_decision(store, chosen)
            event_ids.append(event_id)
            if round_ % 4:  # some decisions get no reward: learned at window close
                await store.reward(event_id, float(chosen == 1), "click", datetime.now(UTC))
            await asyncio.sleep(0.005)

    producer = asyncio.create_task(produce())
    crashes = 0
    while not producer.done() or crashes < 3:
        # Each learner has its own connections, dropped with it as a dying process's are.
        client = aioredis.Redis.from_url(redis_url)
        learner = Learner(learner_config(redis_url, publish_updates=7), client)
        task = asyncio.create_task(learner.run())
        await asyncio.sleep(rng.uniform(0.2, 0.6))
        await cancel(task)
        await client.connection_pool.disconnect()
        crashes += 1
    await producer

    final = Learner(learner_config(redis_url), raw)
    task = asyncio.create_task(final.run())
    snapshot = await wait_for_snapshot(
        raw, lambda s: s.meta["counts"].get("learned") == total, within_s=20
    )
    await asyncio.sleep(WINDOW_S + 0.3)  # nothing more may arrive
    await final.stop()
    await task
    last = await read_snapshot(raw, "emma:model")
    assert last is not None
    assert last.meta["updates"] == total == last.meta["counts"]["learned"]
    assert last.version >= snapshot.version
    assert last.meta["counts"]["joined"] == sum(1 for i in range(total) if i % 4)
    assert await pending(raw) == 0
    assert crashes >= 3


async def test_a_second_learner_waits_for_the_lease(
    store: DecisionStore, raw: aioredis.Redis, redis_url: str, start_learner: StartLearner
) -> None:
    first = await start_learner()
    second = Learner(learner_config(redis_url), raw)
    task = asyncio.create_task(second.run())
    await asyncio.sleep(0.3)
    assert not second.recovered.is_set()
    event_id = await log_decision(store, 1)
    await store.reward(event_id, 1.0, "click", datetime.now(UTC))
    await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 1)
    await first.stop()  # releases the lease after its final checkpoint
    await asyncio.wait_for(second.recovered.wait(), 5)
    assert second.updates == 1
    await second.stop()
    await task


async def test_a_backlog_longer_to_learn_than_the_lease_lasts_is_learned_in_one_go(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner
) -> None:
    """After a restart or an outage the reward windows of thousands of decisions close at
    once, and learning them takes longer than the lease lasts. The learner keeps its lease
    while it works through them: without that it lost the lease before its checkpoint,
    started over with the same backlog and lost it again, and never published."""
    catalog = [
        {"A": {f"offer=o{i}": 1.0, f"cat=c{i % 7}": 1.0}, "H": {f"ch=c{i % 4}": 1.0}}
        for i in range(50)
    ]
    # About 3 s of work on a quiet machine, three times the lease: a second lost in a
    # stall of a busy machine still leaves two thirds of the term.
    backlog = 4000
    for _ in range(0, backlog, 100):
        await asyncio.gather(*(log_decision(store, 0, actions=catalog) for _ in range(100)))
    await asyncio.sleep(WINDOW_S)  # every window has closed: all learned at the default
    lease_s = 1.0
    started = asyncio.get_running_loop().time()
    learner = await start_learner(lease_s=lease_s)
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == backlog, within_s=60)
    # The work took longer than the lease lasts, or this test would not test the lease.
    assert asyncio.get_running_loop().time() - started > lease_s
    assert snapshot.meta["counts"]["learned"] == backlog
    assert not learner.restarts
    assert await pending(raw) == 0


async def test_entries_with_a_plain_line_written_before_compression_are_learned_too(
    store: DecisionStore, raw: aioredis.Redis, start_learner: StartLearner
) -> None:
    compressed = await log_decision(store, 1)
    plain = await log_decision(store, 2)
    # The second entry again, as entries were written before lines were compressed.
    entry_id, fields = (await raw.xrange("emma:decisions"))[-1]
    text = line_text(fields)
    await raw.xdel("emma:decisions", entry_id)
    del fields[LINE_FIELD.encode()]
    await raw.xadd("emma:decisions", {**fields, PLAIN_LINE_FIELD.encode(): text.encode()})
    await start_learner()
    for event_id in (compressed, plain):
        await store.reward(event_id, 1.0, "click", datetime.now(UTC))
    snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 2)
    assert snapshot.meta["counts"]["learned"] == 2
    assert "unreadable" not in snapshot.meta["counts"]
