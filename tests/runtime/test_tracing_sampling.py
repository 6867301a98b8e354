"""Head sampling by ratio that still records degraded and failed decisions; cheap filters."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from emma.runtime.tracing import child_span, configured_sampler, is_traced, keep_visible

RATIO_ZERO = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}


def _provider(environ: dict[str, str]) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(sampler=configured_sampler(environ))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_unsampled_traces_record_nothing_but_what_must_stay_visible() -> None:
    provider, exporter = _provider(RATIO_ZERO)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("Decide") as root:
        assert not root.get_span_context().trace_flags.sampled
        with tracer.start_as_current_span("child"):
            pass
        keep_visible("emma.decision.degraded", {"emma.degraded": ["profile"]}, tracer)
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["emma.decision.degraded"]
    kept = spans[0]
    # Under the trace id the answer reports, as a child of the unrecorded server span.
    assert kept.context.trace_id == root.get_span_context().trace_id
    assert kept.parent is not None
    assert kept.parent.span_id == root.get_span_context().span_id
    assert kept.attributes is not None
    assert tuple(kept.attributes["emma.degraded"]) == ("profile",)  # type: ignore[arg-type]


def test_sampled_traces_get_no_extra_span() -> None:
    provider, exporter = _provider({})  # parent-based always-on: the default
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("Decide"):
        keep_visible("emma.decision.degraded", {"emma.degraded": ["profile"]}, tracer)
    assert [span.name for span in exporter.get_finished_spans()] == ["Decide"]


@pytest.mark.parametrize(
    ("environ", "description"),
    [
        ({}, "ParentBased{root:AlwaysOnSampler"),
        (RATIO_ZERO, "ParentBased{root:TraceIdRatioBased{0.0}"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
         "KeepVisible{TraceIdRatioBased{0.25}"),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
         "TraceIdRatioBased{1.0}"),
        ({"OTEL_TRACES_SAMPLER": "nonsense"}, "ParentBased{root:AlwaysOnSampler"),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "KeepVisible{AlwaysOffSampler"),
    ],
)  # fmt: skip
def test_the_sampler_follows_the_standard_variables(
    environ: dict[str, str], description: str
) -> None:
    sampler = configured_sampler(environ)
    assert sampler.get_description().startswith("KeepVisible{")
    assert description in sampler.get_description()


def test_health_and_reflection_are_not_traced() -> None:
    assert is_traced(SimpleNamespace(method="/emma.decision.v1.DecisionService/Decide"))
    assert is_traced(SimpleNamespace(method=b"/emma.profile.v1.ProfileService/GetProfile"))
    assert not is_traced(SimpleNamespace(method="/grpc.health.v1.Health/Check"))
    assert not is_traced(SimpleNamespace(method=b"/grpc.health.v1.Health/Watch"))
    assert not is_traced(
        SimpleNamespace(method="/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    )


def test_child_spans_are_started_only_where_they_can_be_recorded() -> None:
    unsampled, _ = _provider(RATIO_ZERO)
    tracer = unsampled.get_tracer("test")
    with (
        tracer.start_as_current_span("Decide") as root,
        child_span(tracer, "emma.decision.eligibility") as span,
    ):
        assert not span.is_recording()
        # No span at all: the unrecorded parent stays current, its trace id with it.
        assert trace.get_current_span() is root

    sampled, exporter = _provider({})
    tracer = sampled.get_tracer("test")
    with (
        tracer.start_as_current_span("Decide"),
        child_span(tracer, "emma.decision.eligibility") as span,
    ):
        assert span.is_recording()
        assert trace.get_current_span() is span
    # Outside any trace, the sampler decides, as for any root span.
    with child_span(tracer, "alone") as span:
        assert span.is_recording()
    names = [span.name for span in exporter.get_finished_spans()]
    assert names == ["emma.decision.eligibility", "Decide", "alone"]
