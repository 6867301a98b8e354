"""A mesh for moments: profile (with its outbox), context and decision servers in-process on
real Redis, and a trigger engine stepped by the test under a clock the test sets."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest
import redis.asyncio as aioredis

from emma.common.v1 import common_pb2
from emma.context.config import ContextConfig
from emma.context.server import build_server as build_context
from emma.decision.config import DecisionConfig
from emma.decision.server import build_server as build_decision
from emma.profile.config import ProfileConfig
from emma.profile.server import build_server as build_profile
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma.triggers.config import TriggerConfig
from emma.triggers.engine import Engine, Stubs
from emma.triggers.rules import default_rules_path, load_rules

if TYPE_CHECKING:
    from emma.decision.v1.decision_pb2_grpc import DecisionServiceAsyncStub
    from emma.profile.v1.profile_pb2_grpc import ProfileServiceAsyncStub

from emma.context.v1 import context_pb2_grpc
from emma.decision.v1 import decision_pb2_grpc

CATALOG = Path(__file__).with_name("catalog.yaml")
# A Friday noon in Berlin: the demo store berlin-mitte is open.
FRIDAY_NOON = datetime(2025, 6, 13, 10, 0, tzinfo=UTC)
MITTE = (52.52437, 13.41053)
_ids = itertools.count()


def customer(value: str = "anna") -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_APP_USER_ID, value=value)


def event(ref: common_pb2.CustomerRef, when: datetime, **payload: Any) -> profile_pb2.Event:
    message = profile_pb2.Event(event_id=f"ev-{next(_ids)}", customer=ref, **payload)
    message.time.FromDatetime(when)
    return message


@dataclasses.dataclass
class Moments:
    profile: ProfileServiceAsyncStub
    decision: DecisionServiceAsyncStub
    engine: Engine
    redis: aioredis.Redis
    clock: list[datetime]

    @property
    def now(self) -> datetime:
        return self.clock[0]

    def at(self, when: datetime) -> None:
        self.clock[0] = when

    async def record(self, *events: profile_pb2.Event) -> None:
        await self.profile.RecordEvents(profile_pb2.RecordEventsRequest(events=list(events)))

    async def consent(
        self, ref: common_pb2.CustomerRef, status: int = profile_pb2.CONSENT_STATUS_GRANTED
    ) -> None:
        changes = [
            profile_pb2.ConsentChange(
                purpose=purpose,  # type: ignore[arg-type]
                status=status,  # type: ignore[arg-type]
                source="test",
            )
            for purpose in (profile_pb2.PURPOSE_PERSONALISATION, profile_pb2.PURPOSE_MARKETING)
        ]
        await self.profile.UpdateConsent(
            profile_pb2.UpdateConsentRequest(customer=ref, changes=changes)
        )

    async def step(self) -> int:
        return await self.engine.step(block_ms=None)

    async def outbound(self) -> list[dict[str, str]]:
        entries = await self.redis.xrange(self.engine.config.outbound_stream)
        return [
            {k.decode(): v.decode() for k, v in cast(dict[bytes, bytes], fields).items()}
            for _, fields in entries
        ]


@contextlib.asynccontextmanager
async def moments_mesh(redis_url: str, consume_erasures: bool = True) -> AsyncIterator[Moments]:
    """Profile, context and decision servers on `redis_url` and an engine over them, all
    stopped at the end; without `consume_erasures` the decision server's erasure consumer
    is off, for tests that drive consumers themselves."""
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
    if not consume_erasures:
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


@pytest.fixture
async def moments(redis_url: str) -> AsyncIterator[Moments]:
    async with moments_mesh(redis_url) as mesh:
        yield mesh


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
