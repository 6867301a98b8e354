"""OpenTelemetry tracing: a provider set up from OTEL_* variables, and gRPC interceptors."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes, AttributeValue

from emma.runtime.server_tracing import ServerTracingInterceptor, traced_method

log = logging.getLogger(__name__)

# A span started with this attribute set to True is sampled whatever the sampler says.
KEEP_ATTRIBUTE = "emma.keep"
DEFAULT_SAMPLER = "parentbased_always_on"
# A proxy until the provider is configured: getting a tracer costs more than a span.
_tracer = trace.get_tracer("emma.runtime")


def is_traced(details: Any) -> bool:
    """Whether a call is traced: all but health and reflection.

    A prefix test on the method name; the instrumentation's own filters call isinstance
    against typing protocols on every call, a few per cent of a busy service's time.
    """
    method = details.method
    if isinstance(method, bytes):  # grpc gives client call details the name as bytes
        method = method.decode()
    return traced_method(method)


class KeepVisibleSampler(Sampler):
    """`delegate` decides (head sampling), except for spans started with emma.keep=True.

    With a ratio below 1 most traces are not recorded, and a degraded or failed decision
    could vanish with them; `keep_visible` starts such a span inside the unsampled trace,
    so it is exported under the trace id the answer reports.
    """

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if attributes and attributes.get(KEEP_ATTRIBUTE) is True:
            parent = trace.get_current_span(parent_context).get_span_context()
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE,
                attributes,
                parent.trace_state if parent.is_valid else None,
            )
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"KeepVisible{{{self.delegate.get_description()}}}"


def configured_sampler(environ: Mapping[str, str] | None = None) -> Sampler:
    """The sampler of OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (the standard names:
    always_on, always_off, traceidratio and their parentbased_ forms), keeping emma.keep spans.
    """
    environ = os.environ if environ is None else environ
    name = environ.get("OTEL_TRACES_SAMPLER", DEFAULT_SAMPLER).strip().lower() or DEFAULT_SAMPLER
    raw = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    try:
        ratio = float(raw) if raw else 1.0
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(raw)
    except ValueError:
        log.warning("OTEL_TRACES_SAMPLER_ARG is not a ratio in [0, 1]; using 1", extra={"arg": raw})
        ratio = 1.0
    roots: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
    }
    root = roots.get(name.removeprefix("parentbased_"))
    if root is None:
        log.warning("unknown OTEL_TRACES_SAMPLER; using the default", extra={"sampler": name})
        root, name = ALWAYS_ON, DEFAULT_SAMPLER
    return KeepVisibleSampler(ParentBased(root) if name.startswith("parentbased_") else root)


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

    The sampler comes from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (parent-based
    always-on by default; e.g. parentbased_traceidratio with 0.1), with spans that
    `keep_visible` starts always sampled; the exporters from OTEL_TRACES_EXPORTER (otlp,
    console; otlp by default when OTEL_EXPORTER_OTLP_ENDPOINT is set), resource attributes from
    OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
    """
    resource = Resource.create({"service.name": service_name, "service.namespace": "emma"})
    provider = TracerProvider(resource=resource, sampler=configured_sampler())
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
    return [ServerTracingInterceptor()]


def client_interceptors() -> list[Any]:
    """Client-side interceptors: one span per outgoing RPC, propagating W3C trace context."""
    return list(aio_client_interceptors(filter_=is_traced))  # type: ignore[no-untyped-call]


def in_unrecorded_trace() -> bool:
    """Whether this runs inside a trace that is not recorded.

    A span started there would not be recorded either: parent-based samplers follow the
    parent, and ratio samplers decide by the trace id, which a child shares.
    """
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled


# What `child_span` gives inside an unrecorded trace: no span at all (reusable).
_NO_SPAN: AbstractContextManager[trace.Span] = contextlib.nullcontext(trace.INVALID_SPAN)


def child_span(tracer: trace.Tracer, name: str) -> AbstractContextManager[trace.Span]:
    """`tracer.start_as_current_span(name)`, or nothing inside a trace that is not recorded
    (`in_unrecorded_trace`): such a span costs about as much as a recorded one to start
    and end, several per decision, and is dropped. Attributes set on what it gives are
    then dropped too; the current span stays the unrecorded parent."""
    if in_unrecorded_trace():
        return _NO_SPAN
    return tracer.start_as_current_span(name)


def current_trace_id() -> str:
    """The W3C trace id (32 hex digits) of the active span, or "" when there is none."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def keep_visible(
    name: str, attributes: Mapping[str, AttributeValue], tracer: trace.Tracer | None = None
) -> None:
    """Records a span `name` in the current trace even if it is not sampled.

    For what must stay visible at any sampling ratio (a degraded or failed decision): in a
    sampled trace the active spans carry it already and nothing is added; otherwise one
    span, a child of the unrecorded active one, is exported with `attributes`.
    """
    if trace.get_current_span().get_span_context().trace_flags.sampled:
        return
    tracer = tracer or _tracer
    tracer.start_span(name, attributes={**attributes, KEEP_ATTRIBUTE: True}).end()
