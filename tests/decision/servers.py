"""In-process decision servers on port 0 for tests, with profile and context down by default."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import grpc

from emma.decision.config import DecisionConfig
from emma.decision.server import build_server
from emma.decision.v1 import decision_pb2_grpc

if TYPE_CHECKING:
    from emma.decision.v1.decision_pb2_grpc import DecisionServiceAsyncStub

StartDecision = Callable[..., Awaitable["DecisionServiceAsyncStub"]]


@asynccontextmanager
async def decision_servers(
    redis_url: str, dead_addr: str, defaults: Mapping[str, Any] | None = None
) -> AsyncIterator[StartDecision]:
    """Yields `start(**config changes)`, which starts one more server and returns its stub;
    every server and channel is closed on exit. `defaults` apply before the changes."""
    servers: list[Any] = []
    channels: list[grpc.aio.Channel] = []

    async def start(**changes: Any) -> DecisionServiceAsyncStub:
        settings: dict[str, Any] = {
            "port": 0,
            "redis_url": redis_url,
            # Profile and context as services, so that each test chooses what they answer.
            "dependencies": "services",
            "profile_addr": dead_addr,
            "context_addr": dead_addr,
            # Generous: a CI machine must not turn a slow first connect into a flaky test.
            "budget_ms": 2000.0,
            **(defaults or {}),
            **changes,
        }
        config = dataclasses.replace(DecisionConfig(), **settings)
        server, port = build_server(config)
        await server.start()
        servers.append(server)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return decision_pb2_grpc.DecisionServiceStub(channel)

    try:
        yield start
    finally:
        for channel in channels:
            await channel.close(None)
        for server in servers:
            await server.stop(0)
