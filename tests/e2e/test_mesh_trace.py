"""One Decide is one trace: the decision service's server span over its reads."""

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


def test_decide_is_one_trace_with_its_reads_under_it(mesh: Mesh, receiver: TraceReceiver) -> None:
    # The mesh reads profiles and context in process (EMMA_DECISION_DEPENDENCIES default);
    # tests/decision/test_mesh.py follows a trace across the services when they are called.
    with EmmaClient(mesh.decision_address, deadline=10) as client:
        # Opens the decision service's connections, so the traced call is not cut short cold.
        client.decide("customer_id:c-warm-up", touchpoint="app", budget_ms=2000)
        decision = client.decide(
            ("app_user_id", "app-anna"), touchpoint="app", budget_ms=2000, device="ios"
        )
    assert len(decision.trace_id) == 32
    assert "profile" not in decision.degraded
    assert "context" not in decision.degraded

    def complete(spans: list[ExportedSpan]) -> bool:
        names = {span.name for span in spans}
        return {"emma.decision.read_profile", "emma.decision.resolve_context"} <= names and any(
            span.kind == SERVER for span in spans
        )

    spans = receiver.wait_for(decision.trace_id, complete)
    assert complete(spans), [(s.service, s.name, s.kind) for s in spans]
    by_id = {span.span_id: span for span in spans}

    roots = [
        s for s in spans if s.service == "emma-decision" and s.kind == SERVER and "Decide" in s.name
    ]
    assert len(roots) == 1
    root = roots[0]
    # The SDK call is not traced itself, so the decision service's server span starts the trace.
    assert root.parent_span_id == ""

    for name in ("emma.decision.read_profile", "emma.decision.resolve_context"):
        (read,) = [s for s in spans if s.name == name]
        assert root in ancestors(read, by_id), f"{name} is not under {root.name}"
    # The profile's script call is a Redis span under the read, where an SRE looks for it.
    (read,) = [s for s in spans if s.name == "emma.decision.read_profile"]
    assert any(s.parent_span_id == read.span_id and s.kind == CLIENT for s in spans)

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
    spans = receiver.wait_for(decision.trace_id, lambda s: "emma-decision" in server_services(s))
    # The inherited OTEL_SERVICE_NAME was removed, so every service kept its own name.
    assert {span.service for span in spans} <= SERVICES
    assert "must-not-be-used" not in {span.service for span in receiver.snapshot()}
