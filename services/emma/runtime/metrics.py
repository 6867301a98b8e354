"""OpenTelemetry metrics: a Prometheus endpoint per process and RED metrics for every RPC."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from emma.runtime.method_handlers import Handler, WrappingInterceptor, rewrapped

log = logging.getLogger(__name__)

METER_NAME = "emma"
# Seconds. Decisions live within a ~50 ms budget, so the buckets are dense below 50 ms and
# sparse above; the default OTel buckets (5 ms .. 10 s) would put every call in two of them.
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05,
    0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
# Health probes come every few seconds from every orchestrator: counted elsewhere, not here.
_UNMEASURED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def configure_metrics(service_name: str, host: str, port: int) -> MeterProvider:
    """Installs the global meter provider and serves it for Prometheus on host:port (0: off)."""
    readers: list[MetricReader] = []
    if port:
        # Imported only when served: a process without metrics starts without them.
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        readers.append(PrometheusMetricReader())
        start_http_server(port, addr=host)
        log.info("metrics served", extra={"address": f"{host}:{port}", "path": "/metrics"})
    provider = MeterProvider(
        resource=Resource.create({"service.name": service_name, "service.namespace": "emma"}),
        metric_readers=readers,
        views=[
            View(
                instrument_name="*duration*",
                aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_S),
            )
        ],
    )
    metrics.set_meter_provider(provider)
    return provider


def meter() -> metrics.Meter:
    """Emma's meter on the global provider (a no-op meter until one is configured)."""
    return metrics.get_meter(METER_NAME)


def _status(code: Any, failed: bool) -> str:
    """The status name the caller sees: an abort set it; gRPC answers UNKNOWN for the rest."""
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return "UNKNOWN" if failed else "OK"


class RpcMetricsInterceptor(WrappingInterceptor):
    """Records `rpc.server.duration` per service, method and status code: rate, errors, latency."""

    def __init__(self) -> None:
        self._duration = meter().create_histogram(
            "rpc.server.duration", unit="s", description="time to answer an RPC, by status code"
        )
        super().__init__()

    def passes(self, method: str) -> bool:
        return method.startswith(_UNMEASURED_PREFIXES)

    def wrap(self, handler: Handler, method: str) -> Handler:
        service, _, name = method.lstrip("/").partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

        def timed(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            return self._timed(behaviour, attributes)

        # Streaming responses have no single latency worth a histogram.
        return rewrapped(handler, unary_unary=timed, stream_unary=timed)

    def _timed(
        self, behaviour: Callable[..., Awaitable[Any]], attributes: dict[str, str]
    ) -> Callable[..., Awaitable[Any]]:
        duration = self._duration

        async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            failed = False
            try:
                return await behaviour(request, context)
            except BaseException:
                failed = True
                raise
            finally:
                duration.record(
                    time.perf_counter() - start,
                    {**attributes, "rpc.grpc.status_code": _status(context.code(), failed)},
                )

        return timed
