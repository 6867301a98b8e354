"""The event loop's lag: a sustained backlog counts as behind, one blocking moment does not."""

from __future__ import annotations

import asyncio
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from emma.runtime.loop_lag import LoopLag


async def test_only_a_sustained_backlog_counts_as_behind() -> None:
    reader = InMemoryMetricReader()
    lag = LoopLag(interval_s=0.01, sustained=3, on=MeterProvider([reader]).get_meter("test"))
    lag.start()
    try:
        await asyncio.sleep(0.1)
        assert not lag.behind(0.05)
        # One blocking moment (a model load): one late sample among prompt ones.
        time.sleep(0.2)  # noqa: ASYNC251 - blocking the loop is the point
        await asyncio.sleep(0.1)
        assert max(lag.samples) < 0.05 and not lag.behind(0.05)
        # A loop kept busy (callbacks of 0.1 s one after another): every sample is late.
        hog = asyncio.create_task(_keep_busy(0.1))
        deadline = time.monotonic() + 5
        while not lag.behind(0.05) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a sampler
            await asyncio.sleep(0.05)
        assert min(lag.samples) > 0.05
        assert lag.recent_s() == max(lag.samples) > 0.05
        assert lag.behind(0.05)
        assert not lag.behind(0.5)
        hog.cancel()
        # Caught up again.
        await asyncio.sleep(0.1)
        assert not lag.behind(0.05)
        assert lag.recent_s() < 0.05
    finally:
        await lag.close()
    assert lag._task is None
    # Every sample is a point of the emma.loop.lag histogram, the hogged ones too.
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [m for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics]
    assert metric.name == "emma.loop.lag" and metric.unit == "s"
    (point,) = metric.data.data_points
    assert isinstance(point, HistogramDataPoint)
    assert point.count >= 10
    assert point.max > 0.05
    assert point.explicit_bounds[0] < 0.001  # dense below the budget, not the SDK's default


async def _keep_busy(step_s: float) -> None:
    while True:
        time.sleep(step_s)  # noqa: ASYNC251 - a callback that hogs the loop
        await asyncio.sleep(0)


async def test_a_lag_never_sampled_is_not_behind() -> None:
    assert not LoopLag().behind(0.0)
    assert LoopLag().recent_s() == 0.0
