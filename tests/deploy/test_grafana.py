"""The Grafana dashboard, Prometheus scrape config and compose services fit the code."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import yaml

from emma.cli.mesh import DEFAULT_METRICS_PORTS
from emma.context.config import ContextConfig
from emma.decision.config import DecisionConfig
from emma.learner.config import LearnerConfig
from emma.profile.config import ProfileConfig
from emma.triggers.config import TriggerConfig

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_KINDS = {
    "create_counter",
    "create_histogram",
    "create_observable_counter",
    "create_observable_gauge",
}
_COUNTERS = {"create_counter", "create_observable_counter"}


def prometheus_names() -> set[str]:
    """What the Prometheus exporter makes of every instrument created in the code."""
    names = set()
    for path in (ROOT / "services" / "emma").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _KINDS
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                continue
            units = [k.value for k in node.keywords if k.arg == "unit"]
            unit = units[0].value if units and isinstance(units[0], ast.Constant) else ""
            base = str(node.args[0].value).replace(".", "_") + ("_seconds" if unit == "s" else "")
            if node.func.attr in _COUNTERS:
                names.add(base + "_total")
            elif node.func.attr == "create_histogram":
                names.update(f"{base}_{suffix}" for suffix in ("bucket", "count", "sum"))
            else:
                names.add(base)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL query: its tokens once label matchers and groupings go."""
    bare = re.sub(r"\{[^}]*\}|\b(?:by|without) \([^)]*\)", "", expr)
    return set(re.findall(r"\b((?:emma|rpc)_[a-z_]+)\b", bare))


def test_every_dashboard_query_uses_a_metric_of_the_code() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "emma.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    used = set().union(*(metric_names(expr) for expr in exprs))
    known = prometheus_names()
    assert "emma_decisions_total" in known and "rpc_server_duration_seconds_bucket" in known
    assert used <= known, sorted(used - known)
    # Each part of the brief has a panel: RED, decision mix, degraded, caps, learner, Redis.
    for metric in (
        "rpc_server_duration_seconds_count",
        "rpc_server_duration_seconds_bucket",
        "emma_decisions_total",
        "emma_decisions_degraded_total",
        "emma_frequency_cap_suppressed_total",
        "emma_learner_lag_seconds",
        "emma_learner_lag_events",
        "emma_model_age_seconds",
        "emma_redis_duration_seconds_bucket",
    ):
        assert metric in used, metric


def test_panels_use_the_provisioned_data_source() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "emma.json").read_text())
    sources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    uid = sources["datasources"][0]["uid"]
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_prometheus_scrapes_each_service_on_its_metrics_port() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    defaults = {
        "decision": DecisionConfig().metrics_port,
        "profile": ProfileConfig().metrics_port,
        "context": ContextConfig().metrics_port,
        "learner": LearnerConfig().metrics_port,
        "triggers": TriggerConfig().metrics_port,
    }
    assert defaults == {service: DEFAULT_METRICS_PORTS[service] for service in defaults}
    # The whole mesh fits on one host.
    assert len(set(DEFAULT_METRICS_PORTS.values())) == len(DEFAULT_METRICS_PORTS)
    assert targets == {service: [f"{service}:{port}"] for service, port in defaults.items()}


def test_compose_runs_prometheus_and_grafana_with_the_files() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert name in services
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            assert (DEPLOY / source).exists(), source
    # The learner listens beyond its container, or Prometheus could not scrape it.
    assert services["learner"]["environment"]["EMMA_LEARNER_HOST"] == "0.0.0.0"
