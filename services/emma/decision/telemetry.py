"""What one decision reports: the `emma.*` attributes of its span, and the decision metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import trace

from emma.decision.metrics import record_decision

if TYPE_CHECKING:
    from emma.decision.domain import DecideInput
    from emma.decision.pipeline import Decision


def observe(span: trace.Span, request: DecideInput, budget_s: float, decision: Decision) -> None:
    """Adds to the Decide span what an operator asks of a decision, then counts it.

    The event id, customer (pseudonymised), offer, channel, degraded parts and candidate count
    are set by the pipeline itself; this adds the rest.
    """
    if span.is_recording():
        filtered = 0
        for code, detail in decision.reasons:
            count = detail.split(" ", 1)[0]
            if code.startswith("filtered.") and count.isdigit():
                filtered += int(count)
        span.set_attributes(
            {
                "emma.touchpoint": str(request.touchpoint.value),
                "emma.budget_ms": round(budget_s * 1000.0, 3),
                "emma.model_version": decision.model_version,
                "emma.fallback": decision.fallback,
                "emma.candidates.filtered": filtered,
            }
        )
    record_decision(request, decision)
