"""One /metrics endpoint for a service's worker processes: the supervisor gathers theirs.

Each worker serves its metrics on a private loopback port the supervisor reserved for it;
the supervisor serves the service's configured metrics port and, on every scrape, reads
each worker's endpoint and answers the union, each sample labelled `worker="<index>"`. So
a service takes one metrics port whatever its worker count (no collision with the next
service's port on one host), and Prometheus scrapes one target per process group.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

WORKER_LABEL = "worker"
# Where workers serve their own metrics: the supervisor's machine only.
WORKER_HOST = "127.0.0.1"
# A worker that does not answer within this is left out of one scrape (e.g. restarting).
SCRAPE_TIMEOUT_S = 2.0


class WorkerMetrics(Collector):
    """Collects the metrics of the workers at `ports` (worker i at ports[i])."""

    def __init__(self, ports: Sequence[int], timeout_s: float = SCRAPE_TIMEOUT_S) -> None:
        self.ports = tuple(ports)
        self.timeout_s = timeout_s

    def _read(self, port: int) -> str | None:
        url = f"http://{WORKER_HOST}:{port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as reply:
                return str(reply.read().decode("utf-8"))
        except OSError as error:
            log.warning("worker metrics unavailable", extra={"port": port, "error": str(error)})
            return None

    def collect(self) -> Iterator[Metric]:
        # One family per name, with every worker's samples: a name exposed twice (with
        # two HELP lines) is an invalid exposition.
        families: dict[str, Metric] = {}
        for index, port in enumerate(self.ports):
            text = self._read(port)
            if text is None:
                continue
            for family in text_string_to_metric_families(text):
                merged = families.get(family.name)
                if merged is None:
                    merged = Metric(family.name, family.documentation, family.type, family.unit)
                    families[family.name] = merged
                merged.samples.extend(
                    sample._replace(labels={**sample.labels, WORKER_LABEL: str(index)})
                    for sample in family.samples
                )
        yield from families.values()


def serve_worker_metrics(host: str, port: int, worker_ports: Sequence[int]) -> Any:
    """Serves the gathered metrics of the workers on host:port; returns the HTTP server."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerMetrics(worker_ports))
    server = start_http_server(port, addr=host, registry=registry)
    log.info(
        "worker metrics served",
        extra={"address": f"{host}:{port}", "workers": len(worker_ports), "path": "/metrics"},
    )
    return server
