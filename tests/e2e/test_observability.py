"""The mesh as `emma up --metrics --traces` runs it: every service serves the metrics the
dashboard asks for, and the built-in receiver shows each decision's trace as a waterfall."""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from emma.cli.main import main as emma
from emma.cli.mesh import PROCESSES, Mesh, MeshPorts
from emma.cli.observability import trace_receiver
from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2, context_pb2_grpc
from emma.demo.loader import load_demo_customers
from emma.faults.server_time import DECIDE_SPAN
from emma.runtime.redis_server import free_port
from emma.runtime.worker_metrics import WORKER_LABEL
from emma.traces.receiver import TraceServer
from emma.traces.store import SpanRecord
from emma_client import EmmaClient
from tests.deploy.test_alerts import rules as alert_rules
from tests.deploy.test_grafana import metric_names

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "emma.json"
# Reported only once something happened that a short test does not provoke: a published
# model, a frequency cap removing an action. tests/deploy/test_grafana.py checks these names
# against the instruments in the code.
APPEAR_LATER = {
    "emma_model_age_seconds",
    "emma_model_version",
    "emma_frequency_cap_suppressed_total",
}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ", re.MULTILINE)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mesh, TraceServer]]:
    mesh = Mesh(
        ports=MeshPorts.free(),
        metrics={service: free_port() for service in PROCESSES},
        run_dir=tmp_path_factory.mktemp("emma-observed"),
    )
    args = argparse.Namespace(traces=True, traces_port=0, traces_keep=100)
    with trace_receiver(args, mesh) as receiver:
        assert isinstance(receiver, TraceServer)
        mesh.start()
        load_demo_customers(mesh.profile_address)
        yield mesh, receiver
    # Leaving the receiver's block stopped the mesh first, so the last spans could be sent.
    assert all(child.process.poll() is not None for child in mesh.children.values())


def scrape(mesh: Mesh, service: str) -> str:
    url = f"http://127.0.0.1:{mesh.metrics_ports[service]}/metrics"
    with urllib.request.urlopen(url, timeout=5) as page:
        return str(page.read().decode())


def samples(page: str) -> dict[str, list[str]]:
    """Sample name -> the label sets it was reported with."""
    found: dict[str, list[str]] = {}
    for name, labels in _SAMPLE.findall(page):
        found.setdefault(name, []).append(labels)
    return found


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def dashboard_metrics() -> set[str]:
    return set().union(*(metric_names(expr) for expr in dashboard_queries()))


def dashboard_labels() -> set[str]:
    """The labels the queries group by or match on, but those Prometheus adds (job,
    instance, le) and the worker label a service with several workers adds (this mesh
    runs one worker per service)."""
    labels: set[str] = set()
    for expr in dashboard_queries():
        for grouped in re.findall(r"by \(([^)]*)\)", expr):
            labels.update(label.strip() for label in grouped.split(","))
        labels.update(re.findall(r"(\w+)\s*(?:=~|!=|=)\s*\"", expr))
    return labels - {"job", "instance", "le", WORKER_LABEL}


def decide_a_few(mesh: Mesh) -> list[str]:
    trace_ids = []
    with EmmaClient(mesh.decision_address, deadline=10) as client:
        client.decide("customer_id:c-warm-up", touchpoint="app", budget_ms=2000)
        for customer in ("loyalty_card:1001", "loyalty_card:1002"):
            decision = client.decide(
                customer, touchpoint="pos", store_id="berlin-mitte", budget_ms=2000
            )
            trace_ids.append(decision.trace_id)
        # A budget too short to hear profile and context: a degraded decision.
        degraded = client.decide("loyalty_card:1003", touchpoint="app", budget_ms=1)
        assert degraded.degraded
    return trace_ids


def resolve_a_context(mesh: Mesh) -> None:
    """A till asking the context service itself (Decide resolves context in process)."""
    with grpc.insecure_channel(mesh.context_address) as channel:
        stub = context_pb2_grpc.ContextServiceStub(channel)
        stub.Resolve(
            context_pb2.ResolveRequest(
                store_id="berlin-mitte", touchpoint=common_pb2.TOUCHPOINT_POS
            ),
            timeout=10,
        )


def test_services_export_what_the_dashboard_shows(observed: tuple[Mesh, TraceServer]) -> None:
    mesh, _ = observed
    decide_a_few(mesh)
    resolve_a_context(mesh)
    pages = {service: samples(scrape(mesh, service)) for service in PROCESSES}

    decision = pages["decision"]
    decide_calls = [
        labels
        for labels in decision["rpc_server_duration_seconds_count"]
        if 'rpc_method="Decide"' in labels
    ]
    assert decide_calls and 'rpc_grpc_status_code="OK"' in decide_calls[0]
    assert any(
        'touchpoint="pos"' in labels and 'offer="' in labels and 'channel="' in labels
        for labels in decision["emma_decisions_total"]
    )
    assert any('part="' in labels for labels in decision["emma_decisions_degraded_total"])
    # The decision log goes to Redis; profiles live there.
    assert "emma_redis_duration_seconds_bucket" in decision
    assert "emma_redis_duration_seconds_bucket" in pages["profile"]
    for service in ("profile", "context"):
        assert "rpc_server_duration_seconds_bucket" in pages[service], service
    assert "emma_learner_lag_seconds" in pages["learner"]
    assert "emma_learner_lag_events" in pages["learner"]
    # Health checks (the mesh waited on them) are not measured as RPCs.
    for page in pages.values():
        assert not any(
            "Health" in labels for labels in page.get("rpc_server_duration_seconds_count", [])
        )

    exported = set().union(*pages.values())
    wanted = dashboard_metrics()
    assert wanted, "the dashboard queries no metric"
    missing = wanted - exported - APPEAR_LATER
    assert not missing, f"the dashboard asks for metrics no service exports: {sorted(missing)}"
    # The alerts too: a rule over a metric no service serves would never fire.
    alerting = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    silent = alerting - exported - APPEAR_LATER
    assert not silent, f"alerts watch metrics no service exports: {sorted(silent)}"
    label_sets = " ".join(
        labels for page in pages.values() for all_ in page.values() for labels in all_
    )
    exported_labels = set(re.findall(r"(\w+)=\"", label_sets))
    unknown = dashboard_labels() - exported_labels
    assert not unknown, f"the dashboard uses labels no metric has: {sorted(unknown)}"


def wait_for(
    receiver: TraceServer, trace_id: str, services: set[str], names: frozenset[str] = frozenset()
) -> list[SpanRecord]:
    """The trace once spans of `services` and spans named `names` arrived (at most 15 s)."""
    deadline = time.monotonic() + 15

    def complete(spans: list[SpanRecord]) -> bool:
        return {s.service for s in spans} >= services and {s.name for s in spans} >= names

    spans = receiver.store.trace(trace_id)
    while not complete(spans) and time.monotonic() < deadline:
        time.sleep(0.1)
        spans = receiver.store.trace(trace_id)
    return spans


def test_the_receiver_shows_each_decision_as_a_waterfall(
    observed: tuple[Mesh, TraceServer], capsys: pytest.CaptureFixture[str]
) -> None:
    mesh, receiver = observed
    trace_id = decide_a_few(mesh)[0]
    # Profiles and context are read in process: the trace is the decision service's.
    services = {"emma-decision"}
    # The server span ends last, so it may come in a later export batch than its children.
    names = frozenset({"emma.decision.read_profile", DECIDE_SPAN})
    spans = wait_for(receiver, trace_id, services, names)
    assert {span.service for span in spans} >= services
    assert any(span.name == "emma.decision.read_profile" for span in spans)

    decide = [s for s in spans if s.service == "emma-decision" and s.name.endswith("/Decide")]
    assert len(decide) == 1
    attributes = decide[0].attributes
    for key in (
        "emma.event_id",
        "emma.offer_id",
        "emma.channel",
        "emma.touchpoint",
        "emma.budget_ms",
        "emma.model_version",
        "emma.candidates",
        "emma.candidates.filtered",
        "emma.degraded",
    ):
        assert key in attributes, key
    assert attributes["emma.touchpoint"] == "pos"
    assert float(attributes["emma.budget_ms"]) == 2000.0
    assert any(span.attributes.get("db.system") == "redis" for span in spans)

    assert emma(["trace", trace_id, "--address", receiver.address]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"trace {trace_id}")
    for service in services:
        assert service in out
    assert f"offer_id={attributes['emma.offer_id']}" in out

    assert emma(["traces", "--slow", "--limit", "3", "--address", receiver.address]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 4
