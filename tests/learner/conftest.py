"""Fixtures of the learner tests: a decision log written as the service writes it, a learner."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from emma.decision.decision_log import DecisionStore, LoggedDecision
from emma.learner.config import LearnerConfig
from emma.learner.learner import Learner
from emma.learner.snapshots import Snapshot, read_snapshot

# Short windows and quick publishing keep the tests fast; the logic is the same.
WINDOW_S = 0.5
GRACE_S = 0.3
ACTIONS: list[dict[str, dict[str, float]]] = [
    {"A": {"offer=emmentaler-20": 1.0, "cat=cheese": 1.0}, "H": {"ch=receipt": 1.0}},
    {"A": {"offer=riesling-case": 1.0, "cat=wine": 1.0}, "H": {"ch=receipt": 1.0}},
    {"A": {"offer=brezel-bonus": 1.0, "cat=bakery": 1.0}, "H": {"ch=cashier_prompt": 1.0}},
]
SHARED = {"U": {"profile=known": 1.0, "aff=cheese": 0.8}, "C": {"daypart=morning": 1.0}}


def learner_config(redis_url: str, **changes: Any) -> LearnerConfig:
    settings: dict[str, Any] = {
        "port": 0,
        "redis_url": redis_url,
        "reward_window_s": WINDOW_S,
        "outcome_grace_s": GRACE_S,
        "publish_interval_s": 0.1,
        "block_ms": 20,
        "lease_s": 0.5,
        "batch": 50,
    }
    settings.update(changes)
    return dataclasses.replace(LearnerConfig(), **settings)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A Redis client that returns bytes, as the learner's own."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[DecisionStore]:
    """Writes decisions, activations and rewards exactly as the decision service does."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield DecisionStore(client, "emma:decisions", "emma:rewards", 100_000, WINDOW_S)
    await client.aclose()


async def log_decision(
    store: DecisionStore,
    chosen: int,
    *,
    deferred: bool = False,
    baseline: int = 0,
    pmf: Sequence[float] | None = None,
    actions: Sequence[dict[str, dict[str, float]]] = ACTIONS,
    event_id: str = "",
) -> str:
    """Logs one decision that chose action `chosen`; returns its event id."""
    event_id = event_id or uuid.uuid4().hex
    probabilities = list(pmf) if pmf is not None else [1 / len(actions)] * len(actions)
    await store.append(
        LoggedDecision(
            event_id=event_id,
            timestamp=datetime.now(UTC),
            context={**SHARED, "_multi": list(actions)},
            pmf=probabilities,
            index=chosen,
            model_version="cold",
            deferred=deferred,
            offer_id="o",
            channel="receipt",
            customer="p-test",
            fallback=len(actions) < 2,
            baseline=baseline,
            reasons=(("chosen.model", "test"),),
        )
    )
    return event_id


StartLearner = Callable[..., Awaitable[Learner]]


@pytest.fixture
async def start_learner(
    redis_url: str, raw: aioredis.Redis
) -> AsyncIterator[Callable[..., Awaitable[Learner]]]:
    """Runs learners as tasks; each stops cleanly (final checkpoint) at the end of the test."""
    running: list[tuple[Learner, asyncio.Task[None]]] = []

    async def start(**changes: Any) -> Learner:
        learner = Learner(learner_config(redis_url, **changes), raw)
        running.append((learner, asyncio.create_task(learner.run())))
        await asyncio.wait_for(learner.recovered.wait(), 10)
        return learner

    yield start
    for learner, task in running:
        await learner.stop()
        await asyncio.wait_for(task, 10)


async def wait_for_snapshot(
    raw: aioredis.Redis, done: Callable[[Snapshot], bool], within_s: float = 10.0
) -> Snapshot:
    """Polls the published snapshot until `done` holds for it."""
    deadline = asyncio.get_running_loop().time() + within_s
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await read_snapshot(raw, "emma:model")
        if last is not None and done(last):
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"no such snapshot; the last was {last and last.meta}")


async def until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    """Polls a learner's state until `condition` holds."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def pending(raw: aioredis.Redis) -> int:
    """Entries the learner's group has not acknowledged, on both streams."""
    total = 0
    for stream in ("emma:decisions", "emma:rewards"):
        summary = await raw.xpending(stream, "emma-learner")
        total += int(summary["pending"])
    return total
