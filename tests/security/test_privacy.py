"""No personal data in logs, spans or the decision log: flows through the real mesh, searched.

Profile, context and decision run in this process on a private Redis, with TLS and caller
checks on; every log line (the services' JSON format, DEBUG and up), every span (exported
over OTLP to an in-test receiver) and every decision and reward log entry is searched for
the raw identifiers, e-mail addresses and tokens the flows used.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from emma.cli.certs import DevCerts
from emma.common.v1 import common_pb2
from emma.decision.config import DecisionConfig
from emma.decision.v1 import decision_pb2, decision_pb2_grpc
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma.runtime.logs import configure_logging
from tests.e2e.otlp import SERVER, TraceReceiver

from .conftest import Start, bearer, client_credentials, start_guarded_mesh, token

if TYPE_CHECKING:
    from emma.decision.v1.decision_pb2_grpc import DecisionServiceAsyncStub
    from emma.profile.v1.profile_pb2_grpc import ProfileServiceAsyncStub

CUSTOMER_ID = "c-privacy-anna-7731"
EMAIL = "anna.privacy@example.org"
CARD = "9276001234567"
OTHER_EMAIL = "ben.privacy@example.net"
# Customer references as callers send them: an e-mail address as app user id happens too.
REFS = [
    common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value=CUSTOMER_ID),
    common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_APP_USER_ID, value=EMAIL),
    common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_LOYALTY_CARD, value=CARD),
    # A raw address where its hash belongs: a caller's mistake must not end up in the logs.
    common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_EMAIL_SHA256, value=OTHER_EMAIL),
]
WHEN = datetime(2026, 7, 10, 17, 30, tzinfo=UTC)


class _Switchable(SpanProcessor):
    """Forwards spans while on: a provider cannot drop a processor once the test is over."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.on = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.on:
            self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


@pytest.fixture
def receiver() -> Iterator[tuple[TraceReceiver, _Switchable]]:
    """An OTLP receiver that gets every span this process ends during the test."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    receiver = TraceReceiver().start()
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True)
    processor = _Switchable(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    provider.add_span_processor(processor)
    yield receiver, processor
    processor.on = False
    processor.shutdown()
    receiver.stop()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log record of the process, DEBUG and up, in the services' JSON line format."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("emma-privacy-test", "DEBUG")
    buffer = io.StringIO()
    service_handler = root.handlers[0]
    assert isinstance(service_handler, logging.StreamHandler)
    service_handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@dataclasses.dataclass
class Mesh:
    profile: ProfileServiceAsyncStub
    decision: DecisionServiceAsyncStub


@pytest.fixture
async def mesh(certs: DevCerts, start: Start, redis_url: str) -> AsyncIterator[Mesh]:
    profile, _, decision = await start_guarded_mesh(certs, start, redis_url, "token")
    profile_channel = grpc.aio.secure_channel(f"127.0.0.1:{profile}", client_credentials(certs))
    decision_channel = grpc.aio.secure_channel(f"127.0.0.1:{decision}", client_credentials(certs))
    yield Mesh(
        profile_pb2_grpc.ProfileServiceStub(profile_channel),
        decision_pb2_grpc.DecisionServiceStub(decision_channel),
    )
    await profile_channel.close(None)
    await decision_channel.close(None)


async def attempt(call: Any) -> Any:
    """Runs a call whose failure is part of the flow (refused, invalid): only the trail counts."""
    try:
        return await call
    except grpc.aio.AioRpcError:
        return None


def purchase(ref: common_pb2.CustomerRef, number: int) -> profile_pb2.Event:
    event = profile_pb2.Event(
        event_id=f"privacy-{number}",
        customer=ref,
        purchase=profile_pb2.Purchase(
            items=[
                common_pb2.BasketItem(
                    product_id="brezel", category="bakery", quantity=2, amount=1.4
                )
            ],
            amount=1.4,
            currency="EUR",
            store_id="berlin-mitte",
        ),
    )
    event.time.FromDatetime(WHEN - timedelta(days=1))
    return event


async def run_flows(certs: DevCerts, mesh: Mesh) -> None:
    ingest, admin, till = (bearer(certs, name) for name in ("ingest", "admin", "till"))
    first, app_user, card, _ = REFS
    await mesh.profile.RecordEvents(
        profile_pb2.RecordEventsRequest(events=[purchase(r, n) for n, r in enumerate(REFS)]),
        metadata=ingest,
    )
    await attempt(
        mesh.profile.LinkIdentity(
            profile_pb2.LinkIdentityRequest(customer=first, identifier=app_user), metadata=ingest
        )
    )
    await attempt(
        mesh.profile.LinkIdentity(
            profile_pb2.LinkIdentityRequest(customer=first, identifier=card), metadata=ingest
        )
    )
    consent = profile_pb2.ConsentChange(
        purpose=profile_pb2.PURPOSE_PERSONALISATION,
        status=profile_pb2.CONSENT_STATUS_GRANTED,
        source="app",
    )
    await attempt(
        mesh.profile.UpdateConsent(
            profile_pb2.UpdateConsentRequest(customer=app_user, changes=[consent]), metadata=admin
        )
    )
    for ref in REFS:
        await mesh.profile.GetProfile(profile_pb2.GetProfileRequest(customer=ref), metadata=till)
        request = decision_pb2.DecideRequest(
            customer=ref, touchpoint=common_pb2.TOUCHPOINT_APP, deferred_activation=True
        )
        request.request_time.FromDatetime(WHEN)
        decision = await mesh.decision.Decide(request, metadata=till)
        await mesh.decision.Activate(
            decision_pb2.ActivateRequest(event_id=decision.event_id), metadata=till
        )
        await mesh.decision.Reward(
            decision_pb2.RewardRequest(event_id=decision.event_id, value=1.0, kind="redeem"),
            metadata=till,
        )
        # Refused calls: a till erasing, a caller without credentials.
        erase = profile_pb2.EraseCustomerRequest(customer=ref)
        await attempt(mesh.profile.EraseCustomer(erase, metadata=till))
        await attempt(mesh.profile.GetProfile(profile_pb2.GetProfileRequest(customer=ref)))
        # Invalid requests carrying the identifier.
        bad = decision_pb2.DecideRequest(
            customer=common_pb2.CustomerRef(value=ref.value), touchpoint=common_pb2.TOUCHPOINT_APP
        )
        await attempt(mesh.decision.Decide(bad, metadata=till))
        await attempt(
            mesh.profile.RecordEvents(
                profile_pb2.RecordEventsRequest(
                    events=[profile_pb2.Event(event_id="bad", customer=ref)]
                ),
                metadata=ingest,
            )
        )
    await attempt(
        mesh.profile.ExportCustomer(
            profile_pb2.ExportCustomerRequest(customer=first), metadata=admin
        )
    )
    for ref in REFS:
        await attempt(
            mesh.profile.EraseCustomer(
                profile_pb2.EraseCustomerRequest(customer=ref), metadata=admin
            )
        )


def leaks(texts: Sequence[str], secrets: Sequence[str]) -> list[tuple[str, str]]:
    return [(secret, text) for text in texts for secret in secrets if secret in text]


async def stream_texts(redis_url: str) -> list[str]:
    """Every entry of the decision and reward logs, as text."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = [
            entry
            for stream in (DecisionConfig().decision_stream, DecisionConfig().reward_stream)
            for entry in await client.xrange(stream)
        ]
    finally:
        await client.aclose()
    return [str(entry) for entry in entries]


async def test_no_identifier_email_or_token_in_any_log_line_span_or_decision_log(
    certs: DevCerts,
    redis_url: str,
    mesh: Mesh,
    receiver: tuple[TraceReceiver, _Switchable],
    log_lines: io.StringIO,
) -> None:
    traces, processor = receiver
    await run_flows(certs, mesh)
    assert processor.force_flush()

    spans = traces.snapshot()
    span_texts = [
        " ".join([s.name, *s.attributes, *s.attributes.values(), *s.other_text]) for s in spans
    ]
    lines = log_lines.getvalue().splitlines()
    # The search would prove nothing without material: the services traced and logged.
    served = {s.name.rsplit("/", 1)[-1] for s in spans if s.kind == SERVER}
    assert {"Decide", "Reward", "GetProfile", "Resolve", "EraseCustomer"} <= served, served
    assert any("call refused" in line for line in lines)

    secrets = [CUSTOMER_ID, EMAIL, CARD, OTHER_EMAIL, "anna.privacy", "ben.privacy"]
    secrets += [token(certs, name) for name in ("till", "ingest", "admin", "decision")]
    assert leaks(lines, secrets) == []
    assert leaks(span_texts, secrets) == []
    decision_log = await stream_texts(redis_url)
    assert len(decision_log) >= 3 * len(REFS)  # a decision, an activation, a reward each
    assert leaks(decision_log, secrets) == []
