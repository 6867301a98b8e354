"""Decide, without gRPC: fetch under a budget, filter, score, sample, log, explain."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import grpc
from opentelemetry import trace

from emma.decision import eligibility as elig
from emma.decision import moments, telemetry, wallet
from emma.decision.bandit import Bandit
from emma.decision.catalog import Catalog, Offer
from emma.decision.contacts import ContactGate, ContactRecord, salted_pseudonym
from emma.decision.decision_log import EncodedContext, LoggedDecision
from emma.decision.domain import (
    TOUCHPOINT_CHANNELS,
    UNAVAILABLE_CUSTOMER,
    Channel,
    CustomerView,
    DecideInput,
    Situation,
)
from emma.decision.event_ids import new_event_id
from emma.decision.features import (
    ActionFeatureCache,
    CustomerMatch,
    action_features,
    dsjson_context,
    shared_features,
    shared_line,
)
from emma.decision.local_context import fallback_situation
from emma.decision.log_buffer import LogBuffer
from emma.decision.metrics import record_queued
from emma.decision.policy import NO_CONTACTS, ContactHistory
from emma.decision.queueing import StandingQueue
from emma.decision.reasons import explain, filter_reasons
from emma.decision.reserve import DecideReserve
from emma.runtime.deadline import abandon, within
from emma.runtime.loop_lag import LoopLag
from emma.runtime.privacy import pseudonymise
from emma.runtime.tracing import child_span, current_trace_id

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

    def cached_situation(self, request: DecideInput) -> Situation | None:
        """The situation at once when it is kept (no await), else None."""


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
    # Offers the customer holds that the touchpoint can honour (emma.decision.wallet).
    open_offers: tuple[wallet.HeldOffer, ...] = ()


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    budget_s: float
    max_actions: int
    default_time_zone: str
    log_timeout_s: float
    # Least part of the budget kept back from the dependencies for deciding (reserve.py).
    decide_reserve_s: float = 0.003
    # While the event loop runs this far behind, the fallback is answered at once; 0: never.
    shed_lag_s: float = 0.0
    # Calls that waited longer than this while a queue stands get the fallback (queueing.py).
    queue_target_s: float = 0.0


def _unavailable(name: str, error: BaseException) -> None:
    status = error.code().name if isinstance(error, grpc.aio.AioRpcError) else ""
    log.info(
        "dependency unavailable",
        extra={"dependency": name, "error": type(error).__name__, "grpc_status": status},
    )


def schedule(action: elig.Action, request: DecideInput, situation: Situation) -> datetime:
    """When to deliver: now, or the later time quiet hours moved the send to (eligibility)."""
    return action.send_at or request.request_time


class Decider:
    """The Decide pipeline; one per process, holding the catalog, the model and the sinks."""

    def __init__(
        self,
        catalog: Catalog,
        bandit: Bandit,
        dependencies: Dependencies,
        sink: DecisionSink,
        settings: PipelineSettings,
        *,
        rules: Sequence[elig.ActionRule] = (),
        contacts: ContactGate | None = None,
        log_buffer: LogBuffer | None = None,
        loop_lag: LoopLag | None = None,
        clock: Callable[[], float] = time.monotonic,
        event_ids: Callable[[], str] = new_event_id,
    ) -> None:
        self.catalog = catalog
        self.bandit = bandit
        self.dependencies = dependencies
        self.sink = sink
        self.settings = settings
        # Each (offer, channel)'s features and VW text, rendered once per catalog offer.
        self.action_features = ActionFeatureCache()
        # The customer-independent filters' outcome per catalog, place, day and touchpoint.
        self.static_eligibility = elig.StaticEligibility()
        self.rules = tuple(rules)
        # Frequency caps; None counts nothing (a catalog's caps are then not enforced).
        self.contacts = contacts
        # Entries whose log write failed, written again when Redis answers; None: flag them.
        self.log_buffer = log_buffer
        self.clock = clock
        # Where each decision's event id comes from (a benchmark makes the same ones each run).
        self.event_ids = event_ids
        # How far behind this process's event loop runs (overload: shed_lag_s).
        self.loop_lag = loop_lag
        # What deciding takes once profile and context are in: kept back from them.
        self.reserve = DecideReserve(settings.decide_reserve_s)
        # Whether calls queue up before this worker faster than it answers them.
        self.queue = StandingQueue(settings.queue_target_s, clock=clock)

    def _overloaded(self) -> bool:
        shed_lag_s = self.settings.shed_lag_s
        return shed_lag_s > 0 and self.loop_lag is not None and self.loop_lag.behind(shed_lag_s)

    def budget(self, request: DecideInput, deadline_s: float | None) -> float:
        """The request's budget (or the default), never longer than the caller's deadline."""
        budget = request.budget_s if request.budget_s else self.settings.budget_s
        return budget if deadline_s is None else min(budget, deadline_s)

    async def decide(
        self, request: DecideInput, deadline_s: float | None = None, queued_s: float | None = None
    ) -> Decision:
        """Decides within the budget, counted from when the caller started the call:
        `queued_s` it waited before reaching here (emma.decision.queueing; None: unknown,
        counted as none) is spent already."""
        started = self.clock()
        budget = self.budget(request, deadline_s)
        event_id = self.event_ids()
        span = trace.get_current_span()
        # Attributes only where they are recorded: 99 % of spans are not, at 1 % sampling.
        recording = span.is_recording()
        if recording:
            span.set_attribute("emma.event_id", event_id)
            span.set_attribute("emma.customer", pseudonymise(request.customer_value))
        queued, limit = 0.0, budget
        if queued_s is not None:
            if recording:
                span.set_attribute("emma.queued_ms", round(queued_s * 1e3, 1))
            record_queued(queued_s)
            queued, limit = queued_s, self.queue.limit_s(queued_s, budget)
        if budget <= 0:
            decision = await self._fallback(
                event_id, request, None, None, [Degraded.FALLBACK], "no_time", {}
            )
        elif queued >= limit:
            # Spent waiting (in the caller, a retry or this replica's queue), or waiting in
            # a queue that stands: the cheapest answer now, which also drains the queue
            # that full decisions would make longer.
            decision = await self._fallback(
                event_id, request, None, None, [Degraded.FALLBACK], "queued", {}
            )
        elif self._overloaded():
            # Every call waits behind the loop's backlog already: the cheapest answer
            # drains it; a full decision would make the next calls wait longer still.
            decision = await self._fallback(
                event_id, request, None, None, [Degraded.FALLBACK], "overloaded", {}
            )
        else:
            left = budget - queued
            deadline = started + left
            decision = await self._decide(
                event_id, request, deadline, deadline - self.reserve.for_budget(left)
            )
        if recording:
            self._describe(span, decision)
        telemetry.observe(span, request, budget, decision)
        return decision

    def _describe(self, span: trace.Span, decision: Decision) -> None:
        span.set_attribute("emma.offer_id", decision.offer.offer_id)
        span.set_attribute("emma.channel", decision.channel.value if decision.channel else "")
        span.set_attribute("emma.degraded", [d.value for d in decision.degraded])
        span.set_attribute("emma.candidates", decision.candidate_count)
        if self.loop_lag is not None:
            # A decision over its budget with a late loop waited for this process, not
            # for a dependency: every timer and reply waited that long to be run.
            span.set_attribute("emma.loop_lag_ms", round(self.loop_lag.recent_s() * 1e3, 1))

    async def _fetch(
        self, name: str, call: Callable[[float], Awaitable[T]], deadline: float
    ) -> T | None:
        """One dependency under what is left of the budget; None when it failed or was late."""
        fetched: T | None = (await self._fetch_together([(name, call)], deadline))[0]
        return fetched

    async def _fetch_together(
        self, calls: Sequence[tuple[str, Callable[[float], Awaitable[Any]]]], deadline: float
    ) -> list[Any]:
        """Several dependencies at once, each under what is left of the budget: one task
        per call and one wait for them all; None for each that failed or was late (any
        failure of a dependency degrades, never fails Decide)."""
        remaining = deadline - self.clock()
        if remaining <= 0:
            return [None] * len(calls)
        # Each dependency gets `remaining` as its own (gRPC) timeout; the wait is the
        # backstop, which returns on time even when a call is slow to cancel.
        tasks = [asyncio.ensure_future(call(remaining)) for _, call in calls]
        try:
            await asyncio.wait(tasks, timeout=remaining)
        finally:
            # Late calls (and all of them, if Decide itself is cancelled) clean up on their
            # own: a Redis command cancelled mid-reply closes its connection first.
            for task in tasks:
                abandon(task)
        results = []
        for (name, _), task in zip(calls, tasks, strict=True):
            late = not task.done() or task.cancelled()
            error = TimeoutError() if late else task.exception()
            if error is None:
                results.append(task.result())
            else:
                _unavailable(name, error)
                results.append(None)
        return results

    async def _contact_record(
        self, subject: str, catalog: Catalog, request: DecideInput, deadline: float
    ) -> ContactRecord | None:
        """The customer's counted contacts and log salt; None when not read in time."""
        contacts = self.contacts
        if contacts is None:
            return None
        return await self._fetch(
            "contacts",
            lambda t: contacts.record(subject, catalog.policy, request),
            deadline,
        )

    async def _decide(
        self, event_id: str, request: DecideInput, deadline: float, fetch_deadline: float
    ) -> Decision:
        """Fetches until `fetch_deadline`, then decides with what arrived by `deadline`."""
        # One catalog for the whole decision, even if a reload swaps it meanwhile.
        catalog = self.catalog
        guess = self.contacts.guess(request) if self.contacts is not None else None
        # The contact record (counters and log salt) is read alongside profile and context,
        # under the guess of whose it is; checked against the canonical id once the profile
        # has arrived.
        calls: list[tuple[str, Callable[[float], Awaitable[Any]]]] = [
            ("profile", lambda t: self.dependencies.customer(request, t)),
        ]
        # A till's context is usually kept for its store and minute: then no task for it.
        cached = self.dependencies.cached_situation(request)
        if cached is None:
            calls.append(("context", lambda t: self.dependencies.situation(request, t)))
        contacts = self.contacts
        if contacts is not None and guess is not None:
            calls.append(("contacts", lambda t: contacts.record(guess, catalog.policy, request)))
        names = [name for name, _ in calls]
        fetched = dict(zip(names, await self._fetch_together(calls, fetch_deadline), strict=True))
        customer_or_none = fetched["profile"]
        situation_or_none = cached if cached is not None else fetched["context"]
        record = fetched.get("contacts")
        fetched_at = self.clock()
        try:
            return await self._choose(
                event_id,
                request,
                deadline,
                catalog,
                guess,
                fetched=(customer_or_none, situation_or_none, record),
            )
        finally:
            # Counted from the fetch deadline when the fetches ran into it: a loop running
            # behind wakes up late for that deadline, and the lateness is deciding time too.
            self.reserve.observe(self.clock() - min(fetched_at, fetch_deadline))

    async def _choose(
        self,
        event_id: str,
        request: DecideInput,
        deadline: float,
        catalog: Catalog,
        guess: str | None,
        *,
        fetched: tuple[CustomerView | None, Situation | None, ContactRecord | None],
    ) -> Decision:
        """Filters, scores, samples, reserves the contact and logs, with what was fetched
        (profile, context and contact record; None where one did not arrive in time)."""
        customer_or_none, situation_or_none, record = fetched
        degraded: list[Degraded] = []
        counting = self.contacts is not None and bool(catalog.policy.caps)
        customer = customer_or_none
        if customer is None:
            degraded.append(Degraded.PROFILE)
            customer = UNAVAILABLE_CUSTOMER
        situation = situation_or_none
        if situation is None:
            degraded.append(Degraded.CONTEXT)
            situation = fallback_situation(request, self.settings.default_time_zone)
        subject = ""
        history: ContactHistory | None = NO_CONTACTS
        if self.contacts is not None and guess is not None:
            subject = self.contacts.subject(request, customer, guess)
            if subject != guess:
                record = await self._contact_record(subject, catalog, request, deadline)
            if counting:
                history = record.history if record is not None else None
                if history is None:
                    degraded.append(Degraded.POLICY)
        # The log names the customer by a salted pseudonym that erasing the record unlinks.
        log_customer = salted_pseudonym(subject, record.salt if record is not None else None)
        policy = elig.Policy(catalog.policy, catalog.segments, history)

        # Held wallet offers and moment rules narrow the candidates (emma.decision.wallet).
        offers, narrowed = wallet.offers_for(catalog, request, customer)
        with child_span(tracer, "emma.decision.eligibility") as span:
            result = elig.eligible_actions(
                offers,
                request,
                customer,
                situation,
                policy=policy,
                rules=self.rules,
                max_actions=self.settings.max_actions,
                static=self.static_eligibility,
            )
            span.set_attribute("emma.candidates", len(result.actions))
        filtered = {f"filtered.{reason}": count for reason, count in sorted(result.removed.items())}
        filtered.update(narrowed)
        if not result.actions:
            return await self._fallback(
                event_id,
                request,
                customer,
                situation,
                degraded,
                "no_eligible_action",
                filtered,
                log_customer,
            )

        shared = shared_features(customer, situation)
        # Only the M part differs per customer; each (action, M part) is rendered once.
        match = CustomerMatch.of(customer)
        cached = self.action_features.get_all(result.actions, match)
        per_action = [features.namespaces for features in cached]
        feature_keys = [features.keys for features in cached]
        with child_span(tracer, "emma.decision.predict") as span:
            # The policy mode decides who chooses; the draw is seeded by the event id.
            choice = self.bandit.choose(
                event_id,
                shared_line(shared),
                [features.line for features in cached],
                [action.offer.priority for action in result.actions],
            )
            model_version = choice.model_version
            span.set_attribute("emma.model_version", model_version)
            span.set_attribute("emma.policy", choice.policy.value)
        if choice.model_failed:
            degraded.append(Degraded.MODEL)
        context = EncodedContext(shared, [features.json for features in cached])

        def entry(
            pmf: list[float], index: int, removed: collections.Counter[str]
        ) -> LoggedDecision:
            """The log entry (and, in it, the reasons) of drawing `index` from `pmf`."""
            held_filtered = dict(filtered)
            for reason, count in removed.items():
                key = f"filtered.{reason}"
                held_filtered[key] = held_filtered.get(key, 0) + count
            explained = explain(
                actions=result.actions,
                pmf=pmf,
                index=index,
                shared=shared,
                per_action=per_action,
                filtered=held_filtered,
                customer=customer,
                segments=catalog.segments,
                keys=feature_keys,
                key_counts=self.action_features.key_counts(cached),
            )
            chosen = result.actions[index]
            return LoggedDecision(
                event_id=event_id,
                timestamp=request.request_time,
                context=context,
                pmf=pmf,
                index=index,
                model_version=model_version,
                deferred=request.deferred_activation,
                offer_id=chosen.offer.offer_id,
                channel=chosen.channel.value,
                customer=log_customer,
                fallback=False,
                policy=choice.policy.value,
                baseline=choice.baseline,
                reasons=[
                    *(r for r in explained if choice.by_model or r[0] != "chosen.model"),
                    *choice.reasons,
                ],
                moment=moments.describe(request.moment),
            )

        pmf, index = choice.pmf, choice.index
        logged: LoggedDecision | None = None
        removed: collections.Counter[str] = collections.Counter()
        if self.contacts is not None and counting:
            # The reservation and the log write share one round trip when the sink allows,
            # unless buffered entries wait: this one then queues behind them (_log).
            held = await self.contacts.hold(
                event_id,
                request,
                subject,
                catalog.policy,
                result.actions,
                pmf,
                index,
                max(deadline - self.clock(), self.settings.log_timeout_s),
                None if self._log_waiting() else entry,
            )
            if held.degraded and Degraded.POLICY not in degraded:
                degraded.append(Degraded.POLICY)
            removed = held.removed
            for reason, count in held.removed.items():
                filtered[f"filtered.{reason}"] = filtered.get(f"filtered.{reason}", 0) + count
            if held.index is None:
                return await self._fallback(
                    event_id,
                    request,
                    customer,
                    situation,
                    degraded,
                    "no_eligible_action",
                    filtered,
                    log_customer,
                )
            pmf, index, logged = held.pmf, held.index, held.logged
        chosen = result.actions[index]
        if logged is None:
            logged = entry(pmf, index, removed)
            if not await self._log(logged, deadline):
                degraded.append(Degraded.DECISION_LOG)

        return Decision(
            event_id=event_id,
            offer=chosen.offer,
            channel=chosen.channel,
            send_at=schedule(chosen, request, situation),
            probability=pmf[index],
            model_version=model_version,
            reasons=tuple((code, str(detail)) for code, detail in logged.reasons),
            degraded=tuple(degraded),
            trace_id=current_trace_id(),
            fallback=False,
            candidate_count=len(result.actions),
            open_offers=wallet.reminders(request, customer, catalog.candidates),
        )

    def _log_waiting(self) -> bool:
        return self.log_buffer is not None and self.log_buffer.waiting

    async def _log(self, logged: LoggedDecision, deadline: float) -> bool:
        """Writes the entry, or buffers it to be written later; False when it is lost."""
        buffer = self.log_buffer
        if buffer is not None and buffer.waiting:
            # Behind the entries already waiting for Redis, so the log stays in order.
            return buffer.keep_decision(logged)
        # What is left of the budget (at least log_timeout_s); an entry not written by then
        # waits in the buffer, so a slow Redis never holds the answer past its budget.
        timeout = max(deadline - self.clock(), self.settings.log_timeout_s)
        with child_span(tracer, "emma.decision.log"):
            try:
                await within(self.sink.append(logged), timeout)
                return True
            except Exception as error:
                # A timed-out write may still have run: a second copy is harmless (the
                # learner drops a repeated event id), a missing one is not.
                log.warning("decision log write failed", extra={"error": type(error).__name__})
                return buffer.keep_decision(logged) if buffer is not None else False

    def _fallback_channel(
        self, request: DecideInput, customer: CustomerView, situation: Situation
    ) -> Channel | None:
        """The fallback offer's first channel that passes touchpoint, caller and consent rules,
        is not frequency-capped (the fallback is never counted) and not quiet right now."""
        offer = self.catalog.fallback
        policy = elig.Policy(self.catalog.policy)
        candidates = [*offer.channels, *TOUCHPOINT_CHANNELS[request.touchpoint]]
        return next(
            (
                c
                for c in candidates
                if elig.channel_allowed(offer, c, request, customer, situation, policy)
            ),
            None,
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
        log_customer: str | None = None,
    ) -> Decision:
        offer = self.catalog.fallback
        customer = customer or UNAVAILABLE_CUSTOMER
        situation = situation or fallback_situation(request, self.settings.default_time_zone)
        channel = self._fallback_channel(request, customer, situation)
        reasons = [("chosen.fallback", why), *filter_reasons(filtered)]
        if channel is not None:
            # Logged as a one-action decision with probability 1, so Activate and Reward
            # find it; the learner gains nothing from it but the counts stay honest.
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
                # Before the contact record was read: linked to nobody (salted_pseudonym).
                customer=log_customer or salted_pseudonym("", None),
                fallback=True,
                policy="fallback",
                reasons=reasons,
                moment=moments.describe(request.moment),
            )
            if not await self._log(logged, self.clock()):
                degraded = [*degraded, Degraded.DECISION_LOG]
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
            open_offers=wallet.reminders(request, customer, self.catalog.candidates),
        )
