"""Decision metrics: offers and channels chosen, degraded parts, frequency-cap suppressions,
and the decision-log buffer."""

from __future__ import annotations

import collections
import functools
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation

from emma.decision.eligibility import FREQUENCY_CAP
from emma.runtime.metrics import LATENCY_BUCKETS_S, meter

if TYPE_CHECKING:
    from emma.decision.domain import DecideInput
    from emma.decision.log_buffer import LogBuffer
    from emma.decision.outcome_buffer import OutcomeBuffer
    from emma.decision.pipeline import Decision

_CAPPED_REASON = f"filtered.{FREQUENCY_CAP}"


# Decisions by (offer, channel, touchpoint, fallback), counted here and reported at each
# collection by an observable counter: the SDK's Counter.add cleans and hashes its
# attributes on every call, about 80 thousand instructions, once per Decide
# (docs/performance.md). Read by the metrics server's thread: a copy of the items is taken
# at once, while the event loop's thread only ever adds.
_decisions: collections.Counter[tuple[str, str, str, bool]] = collections.Counter()


def _decision_counts(options: CallbackOptions) -> Iterable[Observation]:
    return [
        Observation(
            count,
            {"offer": offer, "channel": channel, "touchpoint": touchpoint, "fallback": fallback},
        )
        for (offer, channel, touchpoint, fallback), count in list(_decisions.items())
    ]


class _Instruments:
    def __init__(self) -> None:
        emma = meter()
        emma.create_observable_counter(
            "emma.decisions",
            [_decision_counts],
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
        self.queued: Histogram = emma.create_histogram(
            "emma.decide.queued",
            unit="s",
            description="how long a Decide call waited before its handler ran (callers that "
            "send emma-call-timeout-ms)",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )


@functools.cache
def _instruments() -> _Instruments:
    # Created at the first decision, after run_service installed the meter provider.
    return _Instruments()


def record_decision(request: DecideInput, decision: Decision) -> None:
    """Counts one answered decision: its offer and channel, degraded parts and capped actions."""
    instruments = _instruments()
    touchpoint = str(request.touchpoint.value)
    channel = decision.channel.value if decision.channel else "none"
    _decisions[(decision.offer.offer_id, channel, touchpoint, decision.fallback)] += 1
    for part in decision.degraded:
        instruments.degraded.add(1, {"part": part.value, "touchpoint": touchpoint})
    for code, detail in decision.reasons:
        if code == _CAPPED_REASON:
            # The detail reads "<count> action(s)" (reasons.filter_reasons).
            count = detail.split(" ", 1)[0]
            if count.isdigit():
                instruments.capped.add(int(count), {"touchpoint": touchpoint})


def record_queued(queued_s: float) -> None:
    """One Decide call's wait before its handler: queues outside this replica's event loop
    (the caller's, gRPC's) that no loop lag shows."""
    _instruments().queued.record(queued_s)


# The buffers of this process (one per server), read at each scrape, never on the hot path.
_log_buffers: weakref.WeakSet[LogBuffer] = weakref.WeakSet()


def _buffered(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(sum(len(buffer) for buffer in _log_buffers))]


def _dropped(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(sum(buffer.dropped for buffer in _log_buffers))]


@functools.cache
def _log_buffer_instruments() -> None:
    # Once per process: a second instrument of the same name would be ignored by the SDK.
    emma = meter()
    emma.create_observable_gauge(
        "emma.decision_log.buffered",
        [_buffered],
        unit="{decision}",
        description="decision-log entries waiting in memory for Redis",
    )
    emma.create_observable_counter(
        "emma.decision_log.dropped",
        [_dropped],
        unit="{decision}",
        description="decision-log entries dropped: buffer full, or Redis away at shutdown",
    )


def observe_log_buffer(buffer: LogBuffer) -> None:
    """Exposes the buffer's depth (`emma.decision_log.buffered`) and its dropped entries
    (`emma.decision_log.dropped`, each a decision missing from the log)."""
    _log_buffers.add(buffer)
    _log_buffer_instruments()


_outcome_buffers: weakref.WeakSet[OutcomeBuffer] = weakref.WeakSet()


def _held(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(sum(len(buffer) for buffer in _outcome_buffers))]


def _held_lost(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(sum(buffer.lost for buffer in _outcome_buffers))]


@functools.cache
def _outcome_buffer_instruments() -> None:
    emma = meter()
    emma.create_observable_gauge(
        "emma.outcomes.held",
        [_held],
        unit="{outcome}",
        description="activations and keyed rewards held in memory until Redis answers",
    )
    emma.create_observable_counter(
        "emma.outcomes.held_lost",
        [_held_lost],
        unit="{outcome}",
        description="held activations and rewards lost: Redis still away at shutdown",
    )


def observe_outcome_buffer(buffer: OutcomeBuffer) -> None:
    """Exposes the outcomes held (`emma.outcomes.held`) and those lost at shutdown
    (`emma.outcomes.held_lost`)."""
    _outcome_buffers.add(buffer)
    _outcome_buffer_instruments()
