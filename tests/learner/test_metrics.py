"""The learner's gauges: lag, updates waiting to be published, and the published model's age."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from emma.decision.decision_log import DecisionStore
from emma.learner.learner import Learner
from emma.learner.metrics import LearnerGauges
from tests.learner.conftest import StartLearner, log_decision, until, wait_for_snapshot


def points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[object, ...]], float]:
    """Every data point, by metric name and its attributes' values."""
    data = reader.get_metrics_data()
    values: dict[tuple[str, tuple[object, ...]], float] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    labels = tuple(sorted((point.attributes or {}).values()))
                    values[(metric.name, labels)] = float(point.value)  # type: ignore[union-attr]
    return values


def gauges(reader: InMemoryMetricReader) -> dict[str, float]:
    return {name: value for (name, _), value in points(reader).items()}


Observed = tuple[Learner, InMemoryMetricReader]


@pytest.fixture
async def observed(start_learner: StartLearner) -> AsyncIterator[Observed]:
    """A running learner whose gauges report to a reader of this test's own."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    learner = await start_learner()
    LearnerGauges(learner, provider.get_meter("test"))
    yield learner, reader
    provider.shutdown()


async def test_gauges_follow_a_running_learner(
    store: DecisionStore, raw: aioredis.Redis, observed: Observed
) -> None:
    learner, reader = observed
    before = gauges(reader)
    # No model yet: no version and no age, but a lag of nothing.
    assert "emma.model.version" not in before and "emma.model.age" not in before
    assert before["emma.learner.lag.events"] == 0
    assert before["emma.learner.lag"] >= 0

    for chosen in (0, 1, 2):
        event_id = await log_decision(store, chosen)
        await store.reward(event_id, 1.0, "click", datetime.now(UTC))
    await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 3)
    after = gauges(reader)
    assert after["emma.model.version"] == learner.version >= 1
    assert 0 <= after["emma.model.age"] < 5
    await asyncio.sleep(0.3)
    # The model ages while nothing new is published.
    assert gauges(reader)["emma.model.age"] >= after["emma.model.age"] + 0.2


async def test_a_learner_that_loses_its_lease_counts_a_restart(
    raw: aioredis.Redis, observed: Observed
) -> None:
    learner, reader = observed
    before = points(reader)
    for reason in ("lease_lost", "redis", "error"):
        assert before[("emma.learner.restarts", (reason,))] == 0

    # Another holder takes the lease, as a second learner would once it expired.
    await raw.set("emma:model:lease", "another-learner")
    await until(lambda: bool(learner.restarts))
    after = points(reader)
    assert after[("emma.learner.restarts", ("lease_lost",))] == 1
    assert after[("emma.learner.restarts", ("redis",))] == 0
    # It waits for the other holder now, and has not started over again.
    await asyncio.sleep(0.5)
    assert learner.restarts == {"lease_lost": 1}
    assert not learner.recovered.is_set()
