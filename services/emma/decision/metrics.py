"""Decision metrics: offers and channels chosen, degraded parts, frequency-cap suppressions."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from opentelemetry.metrics import Counter

from emma.decision.eligibility import FREQUENCY_CAP
from emma.runtime.metrics import meter

if TYPE_CHECKING:
    from emma.decision.domain import DecideInput
    from emma.decision.pipeline import Decision

_CAPPED_REASON = f"filtered.{FREQUENCY_CAP}"


class _Instruments:
    def __init__(self) -> None:
        emma = meter()
        self.decisions: Counter = emma.create_counter(
            "emma.decisions",
            unit="{decision}",
            description="decisions by offer, channel, touchpoint",
        )
        self.degraded: Counter = emma.create_counter(
            "emma.decisions.degraded",
            unit="{decision}",
            description="decisions that did without a part (profile, context, model, ...), by part",
        )
        self.capped: Counter = emma.create_counter(
            "emma.frequency_cap.suppressed",
            unit="{action}",
            description="(offer, channel) actions a frequency cap removed from a decision",
        )


@functools.cache
def _instruments() -> _Instruments:
    # Created at the first decision, after run_service installed the meter provider.
    return _Instruments()


def record_decision(request: DecideInput, decision: Decision) -> None:
    """Counts one answered decision: its offer and channel, degraded parts and capped actions."""
    instruments = _instruments()
    touchpoint = str(request.touchpoint.value)
    instruments.decisions.add(
        1,
        {
            "offer": decision.offer.offer_id,
            "channel": decision.channel.value if decision.channel else "none",
            "touchpoint": touchpoint,
            "fallback": decision.fallback,
        },
    )
    for part in decision.degraded:
        instruments.degraded.add(1, {"part": part.value, "touchpoint": touchpoint})
    for code, detail in decision.reasons:
        if code == _CAPPED_REASON:
            # The detail reads "<count> action(s)" (reasons.filter_reasons).
            count = detail.split(" ", 1)[0]
            if count.isdigit():
                instruments.capped.add(int(count), {"touchpoint": touchpoint})
