"""`emma up --metrics --traces`: metrics ports only when asked, and the trace receiver's wiring."""

from __future__ import annotations

import argparse

import pytest

from emma.cli import up
from emma.cli.main import build_parser
from emma.cli.mesh import DEFAULT_METRICS_PORTS, PROCESSES, Mesh, MeshPorts
from emma.cli.observability import describe_observability, trace_receiver
from emma.runtime.redis_server import free_port


def test_without_flags_no_service_serves_metrics() -> None:
    mesh = up.mesh_from_args(build_parser().parse_args(["up"]))
    assert mesh.metrics_ports == {}
    for service in PROCESSES:
        assert mesh.child_env(service)[f"EMMA_{service.upper()}_METRICS_PORT"] == "0"
    assert describe_observability(mesh, None) == ""


def test_metrics_flag_serves_each_on_its_own_port() -> None:
    mesh = up.mesh_from_args(build_parser().parse_args(["up", "--metrics"]))
    assert mesh.metrics_ports == DEFAULT_METRICS_PORTS
    assert mesh.child_env("decision")["EMMA_DECISION_METRICS_PORT"] == "9461"
    assert mesh.child_env("learner")["EMMA_LEARNER_METRICS_PORT"] == "9464"
    assert "http://127.0.0.1:9463/metrics" in describe_observability(mesh, None)


def test_traces_flag_points_the_services_at_a_running_receiver() -> None:
    args = build_parser().parse_args(["up", "--traces", "--traces-port", "0"])
    mesh = Mesh(ports=MeshPorts.free())
    with trace_receiver(args, mesh) as receiver:
        address = getattr(receiver, "address", "")
        assert address.startswith("127.0.0.1:") and not address.endswith(":0")
        env = mesh.child_env("decision")
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{address}"
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert address in describe_observability(mesh, receiver)


def test_a_taken_receiver_port_stops_emma_up(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    first = argparse.Namespace(traces=True, traces_port=port, traces_keep=10)
    with (
        trace_receiver(first, Mesh(ports=MeshPorts.free())),
        pytest.raises(SystemExit) as exit_,
        trace_receiver(first, Mesh(ports=MeshPorts.free())),
    ):
        pass
    assert exit_.value.code == 1
    assert "cannot run the trace receiver" in capsys.readouterr().err
