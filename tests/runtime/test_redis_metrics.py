"""Redis command latency: every Redis client span, pipelines and failures too, becomes a sample."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from emma.runtime.redis_metrics import RedisLatencyProcessor


def points(reader: InMemoryMetricReader) -> dict[tuple[str, bool, bool], HistogramDataPoint]:
    data = reader.get_metrics_data()
    found: dict[tuple[str, bool, bool], HistogramDataPoint] = {}
    if data is None:  # nothing recorded at all
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "emma.redis.duration":
                    for point in metric.data.data_points:
                        assert isinstance(point, HistogramDataPoint)
                        attributes = point.attributes or {}
                        key = (
                            str(attributes["db.operation"]),
                            bool(attributes["pipeline"]),
                            bool(attributes["error"]),
                        )
                        found[key] = point
    return found


async def test_commands_pipelines_and_failures_are_measured(redis_url: str) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    tracers = TracerProvider()
    tracers.add_span_processor(RedisLatencyProcessor(meters.get_meter("test")))
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    RedisInstrumentor.instrument_client(client, tracer_provider=tracers)
    try:
        await client.set("k", "v")
        for _ in range(3):
            assert await client.get("k") == "v"
        async with client.pipeline(transaction=False) as pipe:
            pipe.incr("n")
            pipe.incr("n")
            await pipe.execute()
        with pytest.raises(aioredis.ResponseError):
            await client.incr("k")  # not an integer
    finally:
        await client.aclose()

    found = points(reader)
    assert found[("GET", False, False)].count == 3
    assert found[("SET", False, False)].count == 1
    # The pipeline of two INCRs (sent as INCRBY) is one round trip, one sample.
    assert found[("INCRBY", True, False)].count == 1
    assert found[("INCRBY", False, True)].count == 1
    assert set(found) == {
        ("GET", False, False),
        ("SET", False, False),
        ("INCRBY", True, False),
        ("INCRBY", False, True),
    }
    # Real round trips over loopback: above zero, far below a second.
    get = found[("GET", False, False)]
    assert 0 < get.sum < 1.0
    meters.shutdown()
    tracers.shutdown()


async def test_spans_other_than_redis_are_ignored() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    tracers = TracerProvider()
    tracers.add_span_processor(RedisLatencyProcessor(meters.get_meter("test")))
    with tracers.get_tracer("test").start_as_current_span("GET", attributes={"db.system": "sql"}):
        pass
    assert points(reader) == {}
    meters.shutdown()
    tracers.shutdown()
