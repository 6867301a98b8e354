"""Published model snapshots: replicas swap them in under load, replay decisions, obey modes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis
import vowpalwabbit

from emma.decision.bandit import Model, sample_index, save_workspace, with_floor
from emma.decision.config import DEFAULT_VW_ARGS
from emma.decision.features import vw_lines
from emma.decision.log_line import line_of
from emma.decision.v1 import decision_pb2
from emma.learner.snapshots import Snapshot

from .conftest import StartDecision, stream_entries
from .test_service import decide_request

POLL_S = 0.02


def trained(rounds: int) -> bytes:
    """A model that has seen `rounds` examples; different rounds give different models."""
    workspace = vowpalwabbit.Workspace(DEFAULT_VW_ARGS)
    for i in range(rounds):
        workspace.learn(
            [
                f"shared |C hour:{i % 24}",
                f"0:{-1.0 if i % 2 else 0.0}:0.5 |A offer=espresso-beans-app |H ch=in_app",
                "|A offer=loyalty-points |H ch=in_app",
            ]
        )
    data = save_workspace(workspace)
    workspace.finish()
    return data


async def publish(
    raw: aioredis.Redis, version: int, data: bytes, meta: Mapping[str, Any] | None = None
) -> None:
    fields = Snapshot(version, data, {"vw_args": DEFAULT_VW_ARGS, **(meta or {})}).fields()
    await raw.hset("emma:model", mapping=fields)  # type: ignore[arg-type]


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_new_model_is_swapped_in_under_load_without_a_failed_request(
    start_decision: StartDecision, raw: aioredis.Redis
) -> None:
    stub = await start_decision(model_poll_s=POLL_S)
    models = [trained(rounds) for rounds in (10, 20, 30, 40, 50)]
    seen: list[str] = []
    errors: list[BaseException] = []
    publishing = True

    async def decide_until_published() -> None:
        while publishing:
            try:
                response = await stub.Decide(decide_request(), timeout=5)
            except Exception as error:  # any failure fails the test below
                errors.append(error)
                continue
            assert decision_pb2.DEGRADED_PART_MODEL not in response.degraded
            seen.append(response.model_version)

    workers = [asyncio.create_task(decide_until_published()) for _ in range(8)]
    for version, data in enumerate(models, start=1):
        await asyncio.sleep(0.15)
        await publish(raw, version, data)
    await asyncio.sleep(0.3)
    publishing = False
    await asyncio.gather(*workers)
    assert errors == []
    assert len(seen) > 50
    assert seen[0] == "cold"
    assert seen[-1] == "learner-5"
    # Versions come in order: a replica never goes back to an older model. (A version can be
    # skipped when the next one is published before a poll sees it, so none is required.)
    rank = {
        name: index for index, name in enumerate(["cold", *(f"learner-{v}" for v in range(1, 6))])
    }
    ranks = [rank[version] for version in dict.fromkeys(seen)]
    assert ranks == sorted(ranks)


async def test_a_replica_starts_with_the_published_model(
    start_decision: StartDecision, raw: aioredis.Redis
) -> None:
    await publish(raw, 7, trained(5))
    stub = await start_decision(model_poll_s=60)
    assert (await stub.Decide(decide_request())).model_version == "learner-7"


async def test_a_model_trained_with_other_vw_args_is_refused(
    start_decision: StartDecision, raw: aioredis.Redis
) -> None:
    stub = await start_decision(model_poll_s=POLL_S)
    await publish(raw, 1, trained(5), {"vw_args": "--cb_explore_adf --epsilon 0.1"})
    await asyncio.sleep(0.2)
    assert (await stub.Decide(decide_request())).model_version == "cold"
    await publish(raw, 2, trained(5))
    await asyncio.sleep(0.2)
    assert (await stub.Decide(decide_request())).model_version == "learner-2"


async def test_a_logged_decision_replays_to_the_same_choice(
    start_decision: StartDecision, raw: aioredis.Redis, redis_url: str
) -> None:
    data = trained(40)
    await publish(raw, 3, data)
    stub = await start_decision(exploration_floor=0.05)
    responses = [await stub.Decide(decide_request()) for _ in range(20)]
    lines = [line_of(e) for e in await stream_entries(redis_url, "emma:decisions")]
    model = Model.from_bytes(DEFAULT_VW_ARGS, data, "learner-3")
    for response, line in zip(responses, lines, strict=True):
        assert line["VWState"]["m"] == response.model_version == "learner-3"
        context = line["c"]
        shared = {ns: features for ns, features in context.items() if ns != "_multi"}
        text = vw_lines(shared, context["_multi"])
        pmf = with_floor(model.predict(text[0], text[1:]), 0.05)
        index = sample_index(pmf, line["EventId"])
        assert index == line["_labelIndex"]
        assert pmf[index] == pytest.approx(line["p"][0], abs=1e-6)
        assert pmf[index] == pytest.approx(response.probability, abs=1e-6)
    model.close()


async def test_baseline_mode_serves_the_catalog_priority_with_certainty(
    start_decision: StartDecision, redis_url: str
) -> None:
    stub = await start_decision(policy_mode="baseline")
    responses = [await stub.Decide(decide_request()) for _ in range(10)]
    assert {r.offer.offer_id for r in responses} == {responses[0].offer.offer_id}
    assert all(r.probability == 1.0 and r.model_version == "baseline" for r in responses)
    codes = {reason.code: reason.detail for reason in responses[0].reasons}
    assert codes["policy.mode"] == "baseline"
    assert "chosen.baseline" in codes and "chosen.model" not in codes
    line = line_of((await stream_entries(redis_url, "emma:decisions"))[0])
    assert line["_emma"]["policy"] == "baseline"
    assert line["_emma"]["baselineIndex"] == line["_labelIndex"]


async def test_apprentice_serves_the_baseline_until_the_learner_graduates(
    start_decision: StartDecision, raw: aioredis.Redis
) -> None:
    stub = await start_decision(
        policy_mode="apprentice", exploration_floor=0.0, model_poll_s=POLL_S
    )
    before = await stub.Decide(decide_request())
    assert (before.model_version, before.probability) == ("baseline", 1.0)
    detail = {r.code: r.detail for r in before.reasons}["policy.mode"]
    assert "no agreement measured yet" in detail
    agreement = {"rate": 0.95, "measured": 100, "threshold": 0.9, "graduated": True}
    await publish(raw, 4, trained(30), {"agreement": agreement})
    await asyncio.sleep(0.2)
    after = await stub.Decide(decide_request())
    assert after.model_version == "learner-4"
    detail = {r.code: r.detail for r in after.reasons}["policy.mode"]
    assert "0.95 of the last 100" in detail and "serving the learner" in detail
