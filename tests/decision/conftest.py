"""Fixtures of the decision tests: in-process decision servers on port 0, spans, a dead port."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from emma.decision.config import DecisionConfig
from emma.decision.server import build_server
from emma.decision.v1 import decision_pb2_grpc
from emma.runtime.redis_server import free_port

if TYPE_CHECKING:
    from emma.decision.v1.decision_pb2_grpc import DecisionServiceAsyncStub

StartDecision = Callable[..., Awaitable["DecisionServiceAsyncStub"]]


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Spans of this process in memory; installs an SDK provider unless one is there already."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(autouse=True)
def spans(span_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    """Every test traces (so decisions carry trace ids) and sees only its own spans."""
    span_exporter.clear()
    return span_exporter


@pytest.fixture
def dead_addr() -> str:
    """An address nothing listens on: connecting is refused at once."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
async def start_decision(redis_url: str, dead_addr: str) -> AsyncIterator[StartDecision]:
    """Starts decision servers with config changes (profile and context dead by default)."""
    servers: list[Any] = []
    channels: list[grpc.aio.Channel] = []

    async def start(**changes: Any) -> DecisionServiceAsyncStub:
        settings: dict[str, Any] = {
            "port": 0,
            "redis_url": redis_url,
            "profile_addr": dead_addr,
            "context_addr": dead_addr,
            # Generous: a CI machine must not turn a slow first connect into a flaky test.
            "budget_ms": 2000.0,
        }
        settings.update(changes)
        config = dataclasses.replace(DecisionConfig(), **settings)
        server, port = build_server(config)
        await server.start()
        servers.append(server)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return decision_pb2_grpc.DecisionServiceStub(channel)

    yield start
    for channel in channels:
        await channel.close(None)
    for server in servers:
        await server.stop(0)


async def stream_entries(redis_url: str, stream: str) -> list[dict[str, str]]:
    """The fields of every entry of a Redis stream, oldest first."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = cast(list[tuple[str, dict[str, str]]], await client.xrange(stream))
    finally:
        await client.aclose()
    return [fields for _, fields in entries]
