"""Learner metrics: how far behind the learner is and how old the model it published is."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from emma.learner.join import Outcome
from emma.learner.learner import RESTART_ERROR, RESTART_LEASE, RESTART_REDIS
from emma.runtime.metrics import meter

if TYPE_CHECKING:
    from emma.learner.learner import Learner


class LearnerGauges:
    """Observable gauges (and a counter) read from a learner's state at each scrape (no work
    in the loop).

    `emma.learner.lag` (s): how far the last reward read lagged the head of the reward stream;
    `emma.learner.lag.events`: updates learned but not yet in a published model;
    `emma.learner.open_decisions`: decisions waiting for their reward window to close;
    `emma.learner.held_outcomes`: outcomes waiting for their decision's entry (the grace);
    `emma.learner.held_overflow`: outcomes counted unknown early because the hold was full
    (the learner's count, as in its checkpoint: it restarts with the checkpoint's value);
    `emma.learner.restarts`: times this process started over from its checkpoint, by
    `reason` (`lease_lost`, `redis`, `error`);
    `emma.model.version` and `emma.model.age` (s since the learner published that version;
    seen at the checkpoint that published it).
    """

    def __init__(self, learner: Learner, on: Meter | None = None) -> None:
        # A weak reference: the gauges must not keep a stopped learner alive.
        self._learner = weakref.ref(learner)
        self._version = -1
        self._published_at = 0.0
        emma = on or meter()
        emma.create_observable_gauge(
            "emma.learner.lag", [self._lag], unit="s", description="reward stream lag"
        )
        emma.create_observable_gauge(
            "emma.learner.lag.events",
            [self._lag_events],
            unit="{update}",
            description="updates learned but not yet published",
        )
        emma.create_observable_gauge(
            "emma.learner.open_decisions",
            [self._open],
            unit="{decision}",
            description="decisions whose reward window is still open",
        )
        emma.create_observable_gauge(
            "emma.learner.held_outcomes",
            [self._held],
            unit="{outcome}",
            description="outcomes waiting for their decision's entry",
        )
        emma.create_observable_counter(
            "emma.learner.held_overflow",
            [self._held_overflow],
            unit="{outcome}",
            description="outcomes counted unknown before their grace ended: the hold was full",
        )
        emma.create_observable_counter(
            "emma.learner.restarts",
            [self._restarts],
            unit="{restart}",
            description="times the learner started over from its checkpoint, by reason",
        )
        emma.create_observable_gauge(
            "emma.model.version", [self._model_version], description="published model version"
        )
        emma.create_observable_gauge(
            "emma.model.age", [self._model_age], unit="s", description="age of the published model"
        )

    def _lag(self, options: CallbackOptions) -> Iterable[Observation]:
        learner = self._learner()
        return [] if learner is None else [Observation(learner.behind_ms / 1000.0)]

    def _lag_events(self, options: CallbackOptions) -> Iterable[Observation]:
        learner = self._learner()
        return [] if learner is None else [Observation(learner.unpublished)]

    def _open(self, options: CallbackOptions) -> Iterable[Observation]:
        learner = self._learner()
        return [] if learner is None else [Observation(len(learner.join))]

    def _held(self, options: CallbackOptions) -> Iterable[Observation]:
        learner = self._learner()
        return [] if learner is None else [Observation(learner.join.held)]

    def _held_overflow(self, options: CallbackOptions) -> Iterable[Observation]:
        learner = self._learner()
        return [] if learner is None else [Observation(learner.counts[Outcome.HELD_OVERFLOW])]

    def _restarts(self, options: CallbackOptions) -> Iterable[Observation]:
        learner = self._learner()
        if learner is None:
            return []
        # Every reason from 0, so that the first restart shows as an increase.
        return [
            Observation(learner.restarts[why], {"reason": why})
            for why in (RESTART_LEASE, RESTART_REDIS, RESTART_ERROR)
        ]

    def _model_version(self, options: CallbackOptions) -> Iterable[Observation]:
        learner = self._learner()
        return [] if learner is None or not learner.version else [Observation(learner.version)]

    def _model_age(self, options: CallbackOptions) -> Iterable[Observation]:
        learner = self._learner()
        if learner is None or not learner.version:
            return []  # no model published (or recovered) yet: no age to report
        if learner.version != self._version:
            # The checkpoint that published this version set last_publish.
            self._version, self._published_at = learner.version, learner.last_publish
        return [Observation(max(0.0, learner.clock() - self._published_at))]


def observe_learner(learner: Learner) -> LearnerGauges:
    """Registers the learner's gauges on the global meter provider."""
    return LearnerGauges(learner)
