"""End-to-end fixtures: a trace receiver and the whole mesh started as `emma up` starts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emma.cli.mesh import Mesh, MeshPorts
from emma.demo.loader import load_demo_customers
from tests.e2e.otlp import TraceReceiver


@pytest.fixture(scope="session")
def receiver() -> Iterator[TraceReceiver]:
    receiver = TraceReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def mesh(receiver: TraceReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Redis, profile, context and decision as processes on free ports, demo customers loaded."""
    run_dir: Path = tmp_path_factory.mktemp("emma-run")
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        # The services choose their exporters themselves; the caller's choice must not leak in.
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_SERVICE_NAME": "must-not-be-used",
    }
    with Mesh(ports=MeshPorts.free(), env=env, run_dir=run_dir) as mesh:
        load_demo_customers(mesh.profile_address)
        yield mesh
