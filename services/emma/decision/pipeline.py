"""Decide, without gRPC: fetch under a budget, filter, score, sample, log, explain."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

import grpc
from opentelemetry import trace

from emma.decision import eligibility as elig
from emma.decision.bandit import Bandit, ModelError, sample_index, uniform
from emma.decision.catalog import Catalog, Offer
from emma.decision.decision_log import LoggedDecision
from emma.decision.domain import (
    TOUCHPOINT_CHANNELS,
    UNAVAILABLE_CUSTOMER,
    Channel,
    CustomerView,
    DecideInput,
    Situation,
)
from emma.decision.features import (
    action_features,
    dsjson_context,
    shared_features,
    top_features,
    vw_lines,
)
from emma.decision.local_context import fallback_situation
from emma.decision.memory import RecentDecisions, Remembered
from emma.runtime.privacy import pseudonymise
from emma.runtime.tracing import current_trace_id

log = logging.getLogger(__name__)
tracer = trace.get_tracer("emma.decision")

T = TypeVar("T")

FALLBACK_MODEL_VERSION = "fallback"


class Degraded(enum.StrEnum):
    """Parts of a decision that could not use what they normally use (DegradedPart)."""

    PROFILE = "profile"
    CONTEXT = "context"
    MODEL = "model"
    DECISION_LOG = "decision_log"
    POLICY = "policy"
    FALLBACK = "fallback"


class Dependencies(Protocol):
    """Where profile and context come from; each call must give up after `timeout_s`."""

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView: ...

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation: ...


class DecisionSink(Protocol):
    async def append(self, decision: LoggedDecision) -> None: ...


@dataclasses.dataclass(frozen=True)
class Decision:
    event_id: str
    offer: Offer
    channel: Channel | None
    send_at: datetime
    probability: float
    model_version: str
    reasons: tuple[tuple[str, str], ...]
    degraded: tuple[Degraded, ...]
    trace_id: str
    fallback: bool
    candidate_count: int


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    budget_s: float
    max_actions: int
    default_time_zone: str
    log_timeout_s: float


def new_event_id() -> str:
    return uuid.uuid4().hex


def schedule(action: elig.Action, request: DecideInput, situation: Situation) -> datetime:
    """When to deliver. Always now for the foundation; quiet hours (issue 5) plug in here."""
    return request.request_time


class Decider:
    """The Decide pipeline; one per process, holding the catalog, the model and the sinks."""

    def __init__(
        self,
        catalog: Catalog,
        bandit: Bandit,
        dependencies: Dependencies,
        sink: DecisionSink,
        memory: RecentDecisions,
        settings: PipelineSettings,
        *,
        rules: Sequence[elig.ActionRule] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.bandit = bandit
        self.dependencies = dependencies
        self.sink = sink
        self.memory = memory
        self.settings = settings
        self.rules = tuple(rules)
        self.clock = clock

    def budget(self, request: DecideInput, deadline_s: float | None) -> float:
        """The request's budget (or the default), never longer than the caller's deadline."""
        budget = request.budget_s if request.budget_s else self.settings.budget_s
        return budget if deadline_s is None else min(budget, deadline_s)

    async def decide(self, request: DecideInput, deadline_s: float | None = None) -> Decision:
        started = self.clock()
        budget = self.budget(request, deadline_s)
        event_id = new_event_id()
        span = trace.get_current_span()
        span.set_attribute("emma.event_id", event_id)
        span.set_attribute("emma.customer", pseudonymise(request.customer_value))
        if budget <= 0:
            decision = await self._fallback(
                event_id, request, None, None, [Degraded.FALLBACK], "no_time", {}
            )
        else:
            decision = await self._decide(event_id, request, started + budget)
        span.set_attribute("emma.offer_id", decision.offer.offer_id)
        span.set_attribute("emma.channel", decision.channel.value if decision.channel else "")
        span.set_attribute("emma.degraded", [d.value for d in decision.degraded])
        span.set_attribute("emma.candidates", decision.candidate_count)
        return decision

    async def _fetch(
        self, name: str, call: Callable[[float], Awaitable[T]], deadline: float
    ) -> T | None:
        """One dependency under what is left of the budget; None when it failed or was late."""
        remaining = deadline - self.clock()
        if remaining <= 0:
            return None
        try:
            # The dependency gets `remaining` as its own (gRPC) timeout; wait_for is the backstop.
            return await asyncio.wait_for(call(remaining), timeout=remaining)
        except Exception as error:  # any failure of a dependency degrades, never fails Decide
            status = error.code().name if isinstance(error, grpc.aio.AioRpcError) else ""
            log.info(
                "dependency unavailable",
                extra={"dependency": name, "error": type(error).__name__, "grpc_status": status},
            )
            return None

    async def _decide(self, event_id: str, request: DecideInput, deadline: float) -> Decision:
        degraded: list[Degraded] = []
        customer_or_none, situation_or_none = await asyncio.gather(
            self._fetch("profile", lambda t: self.dependencies.customer(request, t), deadline),
            self._fetch("context", lambda t: self.dependencies.situation(request, t), deadline),
        )
        customer = customer_or_none
        if customer is None:
            degraded.append(Degraded.PROFILE)
            customer = UNAVAILABLE_CUSTOMER
        situation = situation_or_none
        if situation is None:
            degraded.append(Degraded.CONTEXT)
            situation = fallback_situation(request, self.settings.default_time_zone)

        with tracer.start_as_current_span("emma.decision.eligibility") as span:
            result = elig.eligible_actions(
                self.catalog.candidates,
                request,
                customer,
                situation,
                rules=self.rules,
                max_actions=self.settings.max_actions,
            )
            span.set_attribute("emma.candidates", len(result.actions))
        filtered = {f"filtered.{reason}": count for reason, count in sorted(result.removed.items())}
        if not result.actions:
            return await self._fallback(
                event_id, request, customer, situation, degraded, "no_eligible_action", filtered
            )

        shared = shared_features(customer, situation)
        per_action = [action_features(action) for action in result.actions]
        lines = vw_lines(shared, per_action)
        with tracer.start_as_current_span("emma.decision.predict") as span:
            try:
                pmf = self.bandit.predict(lines)
                model_version = self.bandit.model_version
            except ModelError as error:
                log.warning("model could not score", extra={"error": str(error)})
                degraded.append(Degraded.MODEL)
                pmf, model_version = uniform(len(lines) - 1), FALLBACK_MODEL_VERSION
            span.set_attribute("emma.model_version", model_version)
        index = sample_index(pmf, event_id)
        chosen = result.actions[index]

        self.memory.remember(
            event_id,
            Remembered(
                lines=lines,
                index=index,
                probability=pmf[index],
                deferred=request.deferred_activation,
                created=self.memory.now(),
            ),
        )
        logged = LoggedDecision(
            event_id=event_id,
            timestamp=request.request_time,
            context=dsjson_context(shared, per_action),
            pmf=pmf,
            index=index,
            model_version=model_version,
            deferred=request.deferred_activation,
            offer_id=chosen.offer.offer_id,
            channel=chosen.channel.value,
            customer=pseudonymise(request.customer_value),
            fallback=False,
        )
        if not await self._log(logged, deadline):
            degraded.append(Degraded.DECISION_LOG)

        reasons = [
            ("chosen.model", f"p={pmf[index]:.3f} among {len(pmf)} actions"),
            ("feature.shared", ",".join(top_features(shared))),
            ("feature.action", ",".join(top_features(per_action[index], limit=4))),
            *filtered.items(),
        ]
        return Decision(
            event_id=event_id,
            offer=chosen.offer,
            channel=chosen.channel,
            send_at=schedule(chosen, request, situation),
            probability=pmf[index],
            model_version=model_version,
            reasons=tuple((code, str(detail)) for code, detail in reasons),
            degraded=tuple(degraded),
            trace_id=current_trace_id(),
            fallback=False,
            candidate_count=len(result.actions),
        )

    async def _log(self, logged: LoggedDecision, deadline: float) -> bool:
        # The log write may outlast a nearly spent budget a little, never a stalled Redis.
        timeout = max(deadline - self.clock(), self.settings.log_timeout_s)
        with tracer.start_as_current_span("emma.decision.log"):
            try:
                await asyncio.wait_for(self.sink.append(logged), timeout=timeout)
                return True
            except Exception as error:
                log.warning("decision log write failed", extra={"error": type(error).__name__})
                return False

    def _fallback_channel(self, request: DecideInput, customer: CustomerView) -> Channel | None:
        """The fallback offer's first channel that passes touchpoint, caller and consent rules."""
        offer = self.catalog.fallback
        candidates = [*offer.channels, *TOUCHPOINT_CHANNELS[request.touchpoint]]
        return next(
            (c for c in candidates if elig.channel_allowed(offer, c, request, customer)), None
        )

    async def _fallback(
        self,
        event_id: str,
        request: DecideInput,
        customer: CustomerView | None,
        situation: Situation | None,
        degraded: list[Degraded],
        why: str,
        filtered: dict[str, int],
    ) -> Decision:
        offer = self.catalog.fallback
        customer = customer or UNAVAILABLE_CUSTOMER
        channel = self._fallback_channel(request, customer)
        if channel is not None:
            # Logged as a one-action decision with probability 1, so Activate and Reward
            # find it; the learner gains nothing from it but the counts stay honest.
            situation = situation or fallback_situation(request, self.settings.default_time_zone)
            shared = shared_features(customer, situation)
            action = action_features(elig.Action(offer, channel))
            logged = LoggedDecision(
                event_id=event_id,
                timestamp=request.request_time,
                context=dsjson_context(shared, [action]),
                pmf=[1.0],
                index=0,
                model_version=FALLBACK_MODEL_VERSION,
                deferred=request.deferred_activation,
                offer_id=offer.offer_id,
                channel=channel.value,
                customer=pseudonymise(request.customer_value),
                fallback=True,
            )
            if not await self._log(logged, self.clock()):
                degraded = [*degraded, Degraded.DECISION_LOG]
        reasons = [("chosen.fallback", why), *((code, str(n)) for code, n in filtered.items())]
        return Decision(
            event_id=event_id,
            offer=offer,
            channel=channel,
            send_at=request.request_time,
            probability=1.0,
            model_version=FALLBACK_MODEL_VERSION,
            reasons=tuple(reasons),
            degraded=tuple(degraded),
            trace_id=current_trace_id(),
            fallback=True,
            candidate_count=0,
        )
