"""The whole loop in one process: a decision server and a learner on one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2
from emma.runtime.redis_server import free_port
from tests.decision.servers import StartDecision, decision_servers

from .conftest import StartLearner

JUNE_MORNING = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)


@pytest.fixture
async def start_decision(redis_url: str) -> AsyncIterator[StartDecision]:
    """Decision servers on port 0 with profile and context down, polling models quickly."""
    quick = {"model_poll_s": 0.05, "reward_window_s": 0.5}
    async with decision_servers(redis_url, f"127.0.0.1:{free_port()}", quick) as start:
        yield start


def request() -> decision_pb2.DecideRequest:
    message = decision_pb2.DecideRequest(
        customer=common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-1"),
        touchpoint=common_pb2.TOUCHPOINT_APP,
    )
    message.request_time.FromDatetime(JUNE_MORNING)
    return message


async def test_rewards_reach_every_replica_as_a_new_model(
    start_decision: StartDecision, start_learner: StartLearner
) -> None:
    await start_learner(publish_interval_s=0.05)
    one, other = await start_decision(), await start_decision()
    target = None
    for round_ in range(60):
        stub = (one, other)[round_ % 2]  # rewards arrive at whichever replica
        decision = await stub.Decide(request())
        target = target or decision.offer.offer_id
        paid = decision.offer.offer_id == target
        await stub.Reward(
            decision_pb2.RewardRequest(event_id=decision.event_id, value=1.0 if paid else 0.0)
        )
    await asyncio.sleep(0.4)
    for stub in (one, other):
        served = [await stub.Decide(request()) for _ in range(20)]
        assert all(d.model_version.startswith("learner-") for d in served)
        assert sum(d.offer.offer_id == target for d in served) >= 14


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
