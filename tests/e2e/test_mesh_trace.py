"""One Decide is one trace across decision, profile and context, with correct parent links."""

from __future__ import annotations

from emma.cli.mesh import Mesh
from emma_client import EmmaClient
from tests.e2e.otlp import CLIENT, SERVER, ExportedSpan, TraceReceiver

SERVICES = {"emma-decision", "emma-profile", "emma-context"}
# The raw identifiers of the customer asked about: the one in the request and her canonical id.
RAW_IDENTIFIERS = ("app-anna", "c-anna")


def server_services(spans: list[ExportedSpan]) -> set[str]:
    return {span.service for span in spans if span.kind == SERVER}


def ancestors(span: ExportedSpan, by_id: dict[str, ExportedSpan]) -> list[ExportedSpan]:
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def test_decide_is_one_trace_across_the_mesh(mesh: Mesh, receiver: TraceReceiver) -> None:
    with EmmaClient(mesh.decision_address, deadline=10) as client:
        # Opens the decision service's channels, so the traced call is not cut short cold.
        client.decide("customer_id:c-warm-up", touchpoint="app", budget_ms=2000)
        decision = client.decide(
            ("app_user_id", "app-anna"), touchpoint="app", budget_ms=2000, device="ios"
        )
    assert len(decision.trace_id) == 32
    assert "profile" not in decision.degraded
    assert "context" not in decision.degraded

    spans = receiver.wait_for(decision.trace_id, lambda s: server_services(s) >= SERVICES)
    assert server_services(spans) >= SERVICES, [(s.service, s.name, s.kind) for s in spans]
    by_id = {span.span_id: span for span in spans}

    roots = [
        s for s in spans if s.service == "emma-decision" and s.kind == SERVER and "Decide" in s.name
    ]
    assert len(roots) == 1
    root = roots[0]
    # The SDK call is not traced itself, so the decision service's server span starts the trace.
    assert root.parent_span_id == ""

    for service in ("emma-profile", "emma-context"):
        servers = [s for s in spans if s.service == service and s.kind == SERVER]
        assert servers, service
        for server in servers:
            parent = by_id.get(server.parent_span_id)
            assert parent is not None, f"{service} {server.name}: parent span not exported"
            assert parent.service == "emma-decision"
            assert parent.kind == CLIENT
            assert root in ancestors(parent, by_id), f"{parent.name} is not under {root.name}"

    # No span of any trace, nor its events or resource, holds the raw identifiers.
    for span in receiver.snapshot():
        texts = [span.name, *span.attributes.values(), *span.attributes, *span.other_text]
        for raw in RAW_IDENTIFIERS:
            assert not any(raw in value for value in texts), (span.service, span.name, raw)


def test_every_span_of_the_mesh_names_its_service(mesh: Mesh, receiver: TraceReceiver) -> None:
    with EmmaClient(mesh.decision_address, deadline=10) as client:
        decision = client.decide(
            "loyalty_card:1004", touchpoint="pos", store_id="muenchen-marienplatz", budget_ms=2000
        )
    spans = receiver.wait_for(decision.trace_id, lambda s: server_services(s) >= SERVICES)
    # The inherited OTEL_SERVICE_NAME was removed, so every service kept its own name.
    assert {span.service for span in spans} <= SERVICES
    assert "must-not-be-used" not in {span.service for span in receiver.snapshot()}
