"""The container image exposes every port the mesh serves, and compose runs every process."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from emma.cli.mesh import DEFAULT_METRICS_PORTS, DEFAULT_PORTS
from emma.triggers.config import TriggerConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _exposed() -> set[int]:
    text = (DEPLOY / "Dockerfile").read_text()
    return {int(port) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for port in line.split()}


def test_the_image_exposes_the_grpc_and_metrics_ports() -> None:
    exposed = _exposed()
    assert set(DEFAULT_PORTS.values()) <= exposed
    assert set(DEFAULT_METRICS_PORTS.values()) <= exposed


def test_compose_runs_the_trigger_engine_against_the_mesh() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    triggers = services["triggers"]
    assert triggers["entrypoint"] == ["python", "-m", "emma.triggers"]
    env = triggers["environment"]
    # Every address names a compose service on the port that service listens on.
    for key, service in (
        ("EMMA_PROFILE_ADDR", "profile"),
        ("EMMA_CONTEXT_ADDR", "context"),
        ("EMMA_DECISION_ADDR", "decision"),
    ):
        assert env[key] == f"{service}:{DEFAULT_PORTS[service]}", key
    assert env["EMMA_REDIS_URL"].startswith("redis://redis:")
    # It listens beyond its container, so that Prometheus scrapes its /metrics.
    assert env["EMMA_TRIGGERS_HOST"] == "0.0.0.0"
    env_names = {f.metadata["env"] for f in dataclasses.fields(TriggerConfig)}
    assert {key for key in env if key.startswith("EMMA_")} <= env_names
    assert "triggers" in services["prometheus"]["depends_on"]
