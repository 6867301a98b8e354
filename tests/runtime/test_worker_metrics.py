"""A service in several workers serves one metrics port: the supervisor gathers the workers'."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.parser import text_string_to_metric_families

from emma.runtime.worker_metrics import WorkerMetrics, serve_worker_metrics
from emma.runtime.workers import reserve_port
from tests.runtime.test_workers import _serving, _workers_of, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _worker_endpoint(calls: int) -> int:
    """A worker's own /metrics, as a worker process serves it."""
    registry = CollectorRegistry()
    counter = Counter("emma_calls", "calls answered", registry=registry)
    counter.inc(calls)
    Histogram("emma_latency_seconds", "latency", registry=registry).observe(0.01)
    port = reserve_port("127.0.0.1")
    start_http_server(port, addr="127.0.0.1", registry=registry)
    return port


@pytest.fixture(scope="module")
def worker_ports() -> Iterator[list[int]]:
    yield [_worker_endpoint(3), _worker_endpoint(5)]


def test_the_workers_metrics_are_one_family_per_name_labelled_by_worker(
    worker_ports: list[int],
) -> None:
    gone = reserve_port("127.0.0.1")  # a worker restarting: nobody listens
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerMetrics([*worker_ports, gone], timeout_s=1.0))
    text = generate_latest(registry).decode()
    assert text.count("# HELP emma_calls_total") == 1
    assert text.count("# TYPE emma_latency_seconds histogram") == 1
    families = {f.name: f for f in text_string_to_metric_families(text)}
    calls = {
        s.labels["worker"]: s.value
        for s in families["emma_calls"].samples
        if s.name.endswith("_total")
    }
    assert calls == {"0": 3.0, "1": 5.0}
    buckets = [s for s in families["emma_latency_seconds"].samples if s.name.endswith("_count")]
    assert sorted(s.labels["worker"] for s in buckets) == ["0", "1"]


def test_the_supervisor_serves_them_on_one_port(worker_ports: list[int]) -> None:
    port = reserve_port("127.0.0.1")
    server, thread = serve_worker_metrics("127.0.0.1", port, worker_ports)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        assert 'emma_calls_total{worker="1"} 5.0' in text
    finally:
        server.shutdown()
        thread.join(5)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())
    except OSError:
        return ""


def test_a_service_in_two_workers_takes_one_metrics_port(redis_url: str) -> None:
    """`EMMA_PROFILE_WORKERS=2`: the next port (the context service's default neighbour)
    stays free, and the one port answers for both workers."""
    port = reserve_port("127.0.0.1")
    # A metrics port whose neighbour is free too: the neighbour must stay free, and a
    # neighbour some other process held from the start would say nothing about this one.
    metrics_port = reserve_port("127.0.0.1")
    while not _bindable(metrics_port + 1):
        metrics_port = reserve_port("127.0.0.1")
    environ = {
        **os.environ,
        "EMMA_REDIS_URL": redis_url,
        "EMMA_PROFILE_PORT": str(port),
        "EMMA_PROFILE_METRICS_PORT": str(metrics_port),
        "EMMA_PROFILE_WORKERS": "2",
    }
    parent = subprocess.Popen([sys.executable, "-m", "emma.profile"], env=environ, cwd=ROOT)
    try:
        wait_until(lambda: _serving(port), timeout=60)
        wait_until(lambda: len(_workers_of(parent.pid)) == 2, timeout=60)
        wait_until(
            lambda: 'worker="0"' in (text := _scrape(metrics_port)) and 'worker="1"' in text,
            timeout=30,
        )
        assert _bindable(metrics_port + 1)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
