"""Decide across the real mesh: real profile and context servers in-process, real Redis;
each decision test runs with profile and context read in process and called as services."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from emma.common.v1 import common_pb2
from emma.context.config import ContextConfig
from emma.context.server import build_server as build_context
from emma.decision.config import DEPENDENCIES
from emma.decision.v1 import decision_pb2
from emma.profile.config import ProfileConfig
from emma.profile.server import build_server as build_profile
from emma.profile.v1 import profile_pb2, profile_pb2_grpc

from .conftest import StartDecision

if TYPE_CHECKING:
    from emma.profile.v1.profile_pb2_grpc import ProfileServiceAsyncStub

CUSTOMER = common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="anna-1")
TILL_CHANNELS = {
    common_pb2.CHANNEL_RECEIPT,
    common_pb2.CHANNEL_CASHIER_PROMPT,
    common_pb2.CHANNEL_STORE_SCREEN,
}


@dataclasses.dataclass
class Mesh:
    profile_addr: str
    context_addr: str
    profile: ProfileServiceAsyncStub


@pytest.fixture(params=DEPENDENCIES)
def dependencies(request: pytest.FixtureRequest) -> str:
    """Where the decision service gets profiles and context (EMMA_DECISION_DEPENDENCIES)."""
    return str(request.param)


@pytest.fixture
async def mesh(redis_url: str) -> AsyncIterator[Mesh]:
    profile_server, profile_port = build_profile(
        dataclasses.replace(ProfileConfig(), port=0, redis_url=redis_url)
    )
    context_server, context_port = build_context(dataclasses.replace(ContextConfig(), port=0))
    await profile_server.start()
    await context_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{profile_port}")
    try:
        yield Mesh(
            f"127.0.0.1:{profile_port}",
            f"127.0.0.1:{context_port}",
            profile_pb2_grpc.ProfileServiceStub(channel),
        )
    finally:
        await channel.close(None)
        await profile_server.stop(0)
        await context_server.stop(0)


async def consent(mesh: Mesh, purpose: int, channel: int = common_pb2.CHANNEL_UNSPECIFIED) -> None:
    change = profile_pb2.ConsentChange(
        purpose=purpose,  # type: ignore[arg-type]
        channel=channel,  # type: ignore[arg-type]
        status=profile_pb2.CONSENT_STATUS_GRANTED,
        source="test",
    )
    await mesh.profile.UpdateConsent(
        profile_pb2.UpdateConsentRequest(customer=CUSTOMER, changes=[change])
    )


def decide(touchpoint: int, when: datetime, **fields: object) -> decision_pb2.DecideRequest:
    request = decision_pb2.DecideRequest(
        customer=CUSTOMER,
        touchpoint=touchpoint,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )
    request.request_time.FromDatetime(when)
    return request


async def test_app_decision_uses_profile_consent_and_dislikes(
    mesh: Mesh, start_decision: StartDecision, dependencies: str
) -> None:
    await consent(mesh, profile_pb2.PURPOSE_PERSONALISATION)
    await consent(mesh, profile_pb2.PURPOSE_MARKETING, common_pb2.CHANNEL_PUSH)
    await mesh.profile.UpdatePreferences(
        profile_pb2.UpdatePreferencesRequest(
            customer=CUSTOMER,
            preferences=profile_pb2.Preferences(disliked_products=["gouda"]),
            update_mask=FieldMask(paths=["disliked_products"]),
        )
    )
    stub = await start_decision(
        profile_addr=mesh.profile_addr, context_addr=mesh.context_addr, dependencies=dependencies
    )
    summer_evening = datetime(2026, 7, 10, 17, 30, tzinfo=UTC)  # 19:30 in Berlin
    channels, offers = set(), set()
    for _ in range(25):
        response = await stub.Decide(decide(common_pb2.TOUCHPOINT_APP, summer_evening))
        assert list(response.degraded) == []
        assert not response.fallback
        assert len(response.trace_id) == 32
        channels.add(response.channel)
        offers.add(response.offer.offer_id)
        codes = {reason.code for reason in response.reasons}
        assert {"chosen.model", "filtered.consent", "filtered.dislike"} <= codes
    # Push has consent, e-mail and SMS do not; gouda is disliked.
    assert channels <= {common_pb2.CHANNEL_IN_APP, common_pb2.CHANNEL_PUSH}
    assert "gouda-2for1" not in offers
    shared = next(r.detail for r in response.reasons if r.code == "feature.shared")
    assert "anna" not in shared


async def test_till_decision_in_advent_sees_the_retail_season(
    mesh: Mesh, start_decision: StartDecision, dependencies: str
) -> None:
    stub = await start_decision(
        profile_addr=mesh.profile_addr, context_addr=mesh.context_addr, dependencies=dependencies
    )
    advent_morning = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    offers = set()
    for _ in range(40):
        response = await stub.Decide(
            decide(common_pb2.TOUCHPOINT_POS, advent_morning, store_id="leipzig-zentrum")
        )
        assert list(response.degraded) == []
        assert response.channel in TILL_CHANNELS
        offers.add(response.offer.offer_id)
    # Advent offers are candidates (the local fallback context would not know the season).
    assert offers & {"gluehwein-lebkuchen-advent", "stollen-christmas"}
    assert "spargel-spring" not in offers


async def test_profile_down_context_up_flags_only_the_profile(
    mesh: Mesh, start_decision: StartDecision, dead_addr: str
) -> None:
    stub = await start_decision(profile_addr=dead_addr, context_addr=mesh.context_addr)
    response = await stub.Decide(
        decide(common_pb2.TOUCHPOINT_APP, datetime(2026, 7, 10, 8, 0, tzinfo=UTC))
    )
    assert list(response.degraded) == [decision_pb2.DEGRADED_PART_PROFILE]
    assert response.channel == common_pb2.CHANNEL_IN_APP


async def test_in_process_with_the_profile_store_down_flags_only_the_profile(
    start_decision: StartDecision, dead_addr: str
) -> None:
    # The decision log's Redis is up; the profile store is a port nothing listens on.
    stub = await start_decision(
        dependencies="in-process", profile_redis_url=f"redis://{dead_addr}/0", budget_ms=200.0
    )
    response = await stub.Decide(
        decide(
            common_pb2.TOUCHPOINT_POS,
            datetime(2026, 7, 10, 8, 0, tzinfo=UTC),
            store_id="leipzig-zentrum",
        )
    )
    assert list(response.degraded) == [decision_pb2.DEGRADED_PART_PROFILE]
    assert response.channel in TILL_CHANNELS


async def test_called_as_services_profile_and_context_join_the_decide_trace(
    mesh: Mesh, start_decision: StartDecision, spans: InMemorySpanExporter
) -> None:
    stub = await start_decision(
        profile_addr=mesh.profile_addr, context_addr=mesh.context_addr, dependencies="services"
    )
    response = await stub.Decide(
        decide(common_pb2.TOUCHPOINT_APP, datetime(2026, 7, 10, 8, 0, tzinfo=UTC))
    )
    assert list(response.degraded) == []
    trace = [
        span
        for span in spans.get_finished_spans()
        if span.context is not None and format(span.context.trace_id, "032x") == response.trace_id
    ]
    by_id = {span.context.span_id: span for span in trace if span.context is not None}
    (root,) = [s for s in trace if s.kind == SpanKind.SERVER and s.name.endswith("/Decide")]

    def under_root(span: ReadableSpan) -> bool:
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            if span is root:
                return True
        return False

    # Each service's server span hangs under a client span of the decision service's, over
    # the wire (W3C trace context), below the Decide server span.
    for method in ("/GetProfile", "/Resolve"):
        (server,) = [s for s in trace if s.kind == SpanKind.SERVER and s.name.endswith(method)]
        assert server.parent is not None and server.parent.is_remote
        assert by_id[server.parent.span_id].kind == SpanKind.CLIENT
        assert under_root(server), method
