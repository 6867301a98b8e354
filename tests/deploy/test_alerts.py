"""The alerting rules fit the code: metrics it exports, jobs Prometheus scrapes, and a
runbook section for every alert."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.test_grafana import DEPLOY, ROOT, metric_names, prometheus_names

RUNBOOK = ROOT / "docs" / "operations.md"


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def runbook_sections() -> set[str]:
    """The headings of the runbook's Alerts section."""
    text = RUNBOOK.read_text()
    alerts = text[text.index("\n## Alerts\n") :]
    alerts = alerts[: alerts.index("\n## ", 1)]
    return set(re.findall(r"^### (\S+)$", alerts, re.MULTILINE))


def test_every_rule_queries_metrics_of_the_code() -> None:
    exprs = [rule["expr"] for rule in rules()]
    used = set().union(*(metric_names(expr) for expr in exprs))
    known = prometheus_names()
    assert used <= known, sorted(used - known)
    # What can lose data or the answer's quality has an alert.
    for metric in (
        "emma_decision_log_dropped_total",
        "emma_outcomes_held_lost_total",
        "emma_decisions_degraded_total",
        "rpc_server_duration_seconds_bucket",
        "emma_learner_lag_seconds",
        "emma_loop_lag_seconds_bucket",
        "emma_decide_queued_seconds_bucket",
    ):
        assert metric in used, metric


def test_every_rule_names_only_jobs_that_prometheus_scrapes() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    named: set[str] = set()
    for rule in rules():
        for value in re.findall(r'job=~?"([^"]*)"', rule["expr"]):
            named.update(value.split("|"))
    assert named and named <= jobs, sorted(named - jobs)


def test_every_alert_has_a_severity_a_summary_and_its_runbook_section() -> None:
    sections = runbook_sections()
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
    # No alert without its section, and no section left from an alert that is gone.
    assert set(names) == sections


def test_prometheus_loads_the_rules_in_compose() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1) for v in compose["services"]["prometheus"]["volumes"]
    )
    # Beside the configuration, where its relative path points.
    assert mounts["./alerts.yml"] == "/etc/prometheus/alerts.yml"
    assert mounts["./prometheus.yml"] == "/etc/prometheus/prometheus.yml"
