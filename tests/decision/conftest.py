"""Fixtures of the decision tests: in-process decision servers on port 0, spans, a dead port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from emma.runtime.redis_server import free_port

from .servers import StartDecision, decision_servers

__all__ = ["StartDecision", "stream_entries"]


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
    async with decision_servers(redis_url, dead_addr) as start:
        yield start


async def stream_entries(redis_url: str, stream: str) -> list[dict[str, str]]:
    """The fields of every entry of a Redis stream, oldest first."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = cast(list[tuple[str, dict[str, str]]], await client.xrange(stream))
    finally:
        await client.aclose()
    return [fields for _, fields in entries]
