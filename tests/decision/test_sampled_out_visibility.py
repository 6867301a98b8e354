"""At a sampling ratio of 0 a degraded decision still leaves a span under its trace id."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from emma.cli.health import wait_serving
from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2, decision_pb2_grpc
from emma.runtime.redis_server import RedisServer, free_port
from tests.e2e.otlp import TraceReceiver


@pytest.fixture
def receiver() -> Iterator[TraceReceiver]:
    receiver = TraceReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def decision_addr(
    redis_server: RedisServer, receiver: TraceReceiver, tmp_path: Path
) -> Iterator[str]:
    """The decision service as a process, sampling nothing, its profile store down (profiles
    are read in process) and the profile and context services too."""
    port, dead = free_port(), f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "EMMA_DECISION_PORT": str(port),
        "EMMA_REDIS_URL": redis_server.url,
        "EMMA_PROFILE_ADDR": dead,
        "EMMA_CONTEXT_ADDR": dead,
        "EMMA_PROFILE_REDIS_URL": f"redis://{dead}/0",
        "EMMA_DECISION_METRICS_PORT": "0",  # no Prometheus endpoint in this test
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    log = (tmp_path / "decision.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "emma.decision"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    address = f"127.0.0.1:{port}"
    try:
        assert wait_serving(
            address, "emma.decision.v1.DecisionService", 30, alive=lambda: process.poll() is None
        ), (tmp_path / "decision.log").read_text()
        yield address
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_a_degraded_decision_is_exported_though_its_trace_is_sampled_out(
    decision_addr: str, receiver: TraceReceiver
) -> None:
    request = decision_pb2.DecideRequest(
        customer=common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-1"),
        touchpoint=common_pb2.TOUCHPOINT_APP,
    )
    with grpc.insecure_channel(decision_addr) as channel:
        response = decision_pb2_grpc.DecisionServiceStub(channel).Decide(request, timeout=5)
    assert decision_pb2.DEGRADED_PART_PROFILE in response.degraded
    assert len(response.trace_id) == 32
    spans = receiver.wait_for(response.trace_id, lambda spans: len(spans) > 0, timeout=10)
    # Only the kept span: the server span and the rest of the trace were not sampled.
    assert [span.name for span in spans] == ["emma.decision.degraded"]
    kept = spans[0]
    assert kept.attributes["emma.degraded"] == "profile"
    assert kept.attributes["emma.event_id"] == response.event_id
    assert kept.attributes["emma.customer"] != "c-1"  # pseudonymised
