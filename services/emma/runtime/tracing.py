"""OpenTelemetry tracing: a provider set up from OTEL_* variables, and gRPC interceptors."""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

log = logging.getLogger(__name__)

# Health probes and reflection would drown the traces that matter.
_UNTRACED = filters.negate(
    filters.any_of(
        filters.service_name("grpc.health.v1.Health"),
        filters.service_prefix("grpc.reflection."),
    )
)


def _exporter_names() -> list[str]:
    configured = os.environ.get("OTEL_TRACES_EXPORTER")
    if configured is None:
        # Without a configured endpoint an OTLP exporter would only log connection errors.
        endpoint_set = any(
            os.environ.get(name)
            for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
        return ["otlp"] if endpoint_set else []
    return [name.strip() for name in configured.split(",") if name.strip() not in ("", "none")]


def configure_tracing(service_name: str) -> TracerProvider:
    """Installs the global tracer provider for this process.

    The sampler comes from OTEL_TRACES_SAMPLER (parent-based always-on by default),
    the exporters from OTEL_TRACES_EXPORTER (otlp, console; otlp by default when
    OTEL_EXPORTER_OTLP_ENDPOINT is set), resource attributes from
    OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
    """
    resource = Resource.create({"service.name": service_name, "service.namespace": "emma"})
    provider = TracerProvider(resource=resource)
    for name in _exporter_names():
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            log.warning("unknown OTEL_TRACES_EXPORTER entry ignored", extra={"exporter": name})
    trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing() -> None:
    """Flushes and stops the exporters of the global provider, if it is the SDK's."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def server_interceptors() -> list[Any]:
    """Server-side interceptors: one span per RPC, continuing the caller's W3C trace context."""
    return [aio_server_interceptor(filter_=_UNTRACED)]  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    """Client-side interceptors: one span per outgoing RPC, propagating W3C trace context."""
    return list(aio_client_interceptors(filter_=_UNTRACED))  # type: ignore[no-untyped-call]


def current_trace_id() -> str:
    """The W3C trace id (32 hex digits) of the active span, or "" when there is none."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
