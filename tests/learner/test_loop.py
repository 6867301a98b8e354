"""The whole loop in one process: a decision server and a learner on one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2
from emma.runtime.redis_server import free_port
from tests.decision.servers import StartDecision, decision_servers

from .conftest import StartLearner, wait_for_snapshot

if TYPE_CHECKING:
    from emma.decision.v1.decision_pb2_grpc import DecisionServiceAsyncStub

JUNE_MORNING = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)
ROUNDS = 60


@pytest.fixture
async def start_decision(redis_url: str) -> AsyncIterator[StartDecision]:
    """Decision servers on port 0 with profile and context down, polling models quickly."""
    quick = {"model_poll_s": 0.05, "reward_window_s": 0.5}
    async with decision_servers(redis_url, f"127.0.0.1:{free_port()}", quick) as start:
        yield start


def request(deferred: bool = False) -> decision_pb2.DecideRequest:
    message = decision_pb2.DecideRequest(
        customer=common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-1"),
        touchpoint=common_pb2.TOUCHPOINT_APP,
        deferred_activation=deferred,
    )
    message.request_time.FromDatetime(JUNE_MORNING)
    return message


async def served_by(stub: DecisionServiceAsyncStub, version: str, within_s: float = 10.0) -> None:
    """Waits until the replica serves `version`: it follows the published model by polling."""
    deadline = asyncio.get_running_loop().time() + within_s
    while (await stub.Decide(request(deferred=True))).model_version != version:
        assert asyncio.get_running_loop().time() < deadline, f"{version} never served"
        await asyncio.sleep(0.02)


async def test_rewards_reach_every_replica_as_a_new_model(
    start_decision: StartDecision, start_learner: StartLearner, raw: aioredis.Redis
) -> None:
    await start_learner(publish_interval_s=0.05)
    one, other = await start_decision(), await start_decision()
    target = None
    for round_ in range(ROUNDS):
        stub = (one, other)[round_ % 2]  # rewards arrive at whichever replica
        decision = await stub.Decide(request())
        target = target or decision.offer.offer_id
        paid = decision.offer.offer_id == target
        await stub.Reward(
            decision_pb2.RewardRequest(event_id=decision.event_id, value=1.0 if paid else 0.0)
        )
    # With `sum` a decision is learned only when its window closes, so how many rewards a
    # model has learned at some instant depends on the machine's speed: wait for the model
    # that learned every one of them.
    learned = await wait_for_snapshot(raw, lambda s: s.meta["counts"].get("rewarded") == ROUNDS)
    for stub in (one, other):
        await served_by(stub, learned.name)
        # Never activated, these decisions teach nothing: no later model can replace the one
        # they check.
        served = [await stub.Decide(request(deferred=True)) for _ in range(20)]
        assert {d.model_version for d in served} == {learned.name}
        targeted = [d for d in served if d.offer.offer_id == target]
        # The draws are random (seeded by random event ids), the model's pmf is not: the
        # paid offer is its favourite, and so the majority of what it serves.
        assert targeted, [d.offer.offer_id for d in served]
        assert all(d.probability > 0.5 for d in targeted), [d.probability for d in targeted]
        assert len(targeted) >= 11


async def test_an_apprentice_serves_the_baseline_until_the_learner_agrees_with_it(
    start_decision: StartDecision, start_learner: StartLearner
) -> None:
    await start_learner(publish_interval_s=0.05, apprentice_window=20, apprentice_threshold=0.8)
    stub = await start_decision(policy_mode="apprentice", exploration_floor=0.2)
    versions = []
    for _ in range(150):
        decision = await stub.Decide(request())
        versions.append(decision.model_version)
        if decision.model_version != "baseline":
            break
        # The baseline's choices pay, explored ones do not: the learner comes to agree.
        baseline = decision.probability > 0.5
        await stub.Reward(
            decision_pb2.RewardRequest(event_id=decision.event_id, value=float(baseline))
        )
        await asyncio.sleep(0.01)
    assert versions[0] == "baseline"
    assert versions[-1].startswith("learner-"), versions[-5:]
    reasons = {reason.code: reason.detail for reason in decision.reasons}
    assert "serving the learner" in reasons["policy.mode"]
