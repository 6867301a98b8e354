"""A mesh for erasure: profile, context and decision servers in-process on real Redis, a trigger
engine stepped by the test; the decision server's erasure consumer on, or off for tests that
drive consumers themselves."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import grpc
import pytest
import redis.asyncio as aioredis

from emma.context.config import ContextConfig
from emma.context.server import build_server as build_context
from emma.context.v1 import context_pb2_grpc
from emma.decision.config import DecisionConfig
from emma.decision.server import build_server as build_decision
from emma.decision.v1 import decision_pb2_grpc
from emma.profile.config import ProfileConfig
from emma.profile.server import build_server as build_profile
from emma.profile.v1 import profile_pb2_grpc
from emma.triggers.config import TriggerConfig
from emma.triggers.engine import Engine, Stubs
from emma.triggers.rules import default_rules_path, load_rules
from tests.triggers.conftest import CATALOG, FRIDAY_NOON, Moments

MeshFactory = Callable[..., AbstractAsyncContextManager[Moments]]


@pytest.fixture
def mesh(redis_url: str) -> MeshFactory:
    """`async with mesh(consume=...) as moments`: the servers, stopped at the end."""

    @asynccontextmanager
    async def start(consume: bool = True) -> AsyncIterator[Moments]:
        profile_server, profile_port = build_profile(
            dataclasses.replace(ProfileConfig(), port=0, redis_url=redis_url)
        )
        context_server, context_port = build_context(dataclasses.replace(ContextConfig(), port=0))
        await profile_server.start()
        await context_server.start()
        decision_config = dataclasses.replace(
            DecisionConfig(),
            port=0,
            redis_url=redis_url,
            profile_addr=f"127.0.0.1:{profile_port}",
            context_addr=f"127.0.0.1:{context_port}",
            catalog_path=CATALOG,
            budget_ms=2000.0,
        )
        if not consume:
            decision_config = dataclasses.replace(decision_config, profile_events_stream="")
        decision_server, decision_port = build_decision(decision_config)
        await decision_server.start()
        channels = [
            grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            for port in (profile_port, context_port, decision_port)
        ]
        config = dataclasses.replace(
            TriggerConfig(), port=0, redis_url=redis_url, consumer="test", claim_idle_s=0.2
        )
        client = aioredis.Redis.from_url(redis_url, decode_responses=False)
        clock = [FRIDAY_NOON]
        stubs = Stubs(
            profile=profile_pb2_grpc.ProfileServiceStub(channels[0]),
            context=context_pb2_grpc.ContextServiceStub(channels[1]),
            decision=decision_pb2_grpc.DecisionServiceStub(channels[2]),
        )
        engine = Engine(config, load_rules(default_rules_path()), client, stubs, lambda: clock[0])
        await engine.ensure_group()
        try:
            yield Moments(stubs.profile, stubs.decision, engine, client, clock)
        finally:
            for channel in channels:
                await channel.close(None)
            await client.aclose()
            for server in (decision_server, profile_server, context_server):
                await server.stop(0)

    return start
