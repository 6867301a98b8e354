"""The Decide pipeline under a budget: late dependencies, a spent deadline, a failing model."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

import pytest

from emma.decision.bandit import Bandit
from emma.decision.catalog import load_catalog
from emma.decision.config import DEFAULT_CATALOG, DEFAULT_VW_ARGS
from emma.decision.decision_log import LoggedDecision
from emma.decision.domain import Channel, CustomerView, DecideInput, Situation, Touchpoint
from emma.decision.pipeline import Decider, Degraded, PipelineSettings
from emma.decision.queueing import StandingQueue
from emma.decision.reserve import DecideReserve
from emma.runtime.loop_lag import LoopLag

from .helpers import customer, request, situation


class Dependencies:
    """Stand-ins for the profile and context services that answer after a delay."""

    def __init__(self, profile_delay: float = 0.0, context_delay: float = 0.0) -> None:
        self.profile_delay = profile_delay
        self.context_delay = context_delay
        self.timeouts: list[float] = []

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        self.timeouts.append(timeout_s)
        await asyncio.sleep(self.profile_delay)
        return customer(marketing_all=True)

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        self.timeouts.append(timeout_s)
        await asyncio.sleep(self.context_delay)
        return situation()

    def cached_situation(self, request: DecideInput) -> Situation | None:
        return None


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.logged: list[LoggedDecision] = []
        self.fail = fail

    async def append(self, decision: LoggedDecision) -> None:
        if self.fail:
            raise ConnectionError("redis down")
        self.logged.append(decision)


class BrokenBandit(Bandit):
    def predict(self, shared_line: str, action_lines: Sequence[str]) -> tuple[list[float], str]:
        from emma.decision.bandit import ModelError

        raise ModelError("corrupt model")


def decider(
    dependencies: Dependencies, sink: Sink | None = None, bandit: Bandit | None = None
) -> Decider:
    return Decider(
        load_catalog(DEFAULT_CATALOG),
        bandit or Bandit(DEFAULT_VW_ARGS),
        dependencies,
        sink or Sink(),
        PipelineSettings(
            budget_s=0.05, max_actions=50, default_time_zone="Europe/Berlin", log_timeout_s=0.02
        ),
    )


async def test_healthy_dependencies_give_an_undegraded_decision() -> None:
    sink = Sink()
    decision = await decider(Dependencies(), sink).decide(request())
    assert decision.degraded == ()
    assert decision.channel in {Channel.IN_APP, Channel.PUSH, Channel.EMAIL, Channel.SMS}
    assert [d.event_id for d in sink.logged] == [decision.event_id]


async def test_a_late_profile_is_skipped_within_the_budget() -> None:
    dependencies = Dependencies(profile_delay=1.0)
    pipeline = decider(dependencies)  # loading the catalog and model is not the decision's time
    started = time.monotonic()
    decision = await pipeline.decide(request())
    assert time.monotonic() - started < 0.5
    assert decision.degraded == (Degraded.PROFILE,)
    assert decision.channel is Channel.IN_APP  # nothing consent-bound without the profile
    assert all(0 < t <= 0.05 for t in dependencies.timeouts)


async def test_a_hung_profile_leaves_the_reserve_for_deciding() -> None:
    dependencies = Dependencies(profile_delay=1.0)
    pipeline = decider(dependencies)
    await pipeline.decide(request())  # warm: action examples parsed, reserve measured
    dependencies.timeouts.clear()
    reserve = pipeline.reserve.for_budget(0.05)
    started = time.monotonic()
    decision = await pipeline.decide(request())
    elapsed = time.monotonic() - started
    assert decision.degraded == (Degraded.PROFILE,)
    assert reserve >= pipeline.settings.decide_reserve_s
    # The profile got the budget minus the reserve, so the answer comes within the budget;
    # the answer is not held by the hung profile (`emma faults` measures the tight bound,
    # this leaves a loaded test machine a margin).
    assert max(dependencies.timeouts) <= 0.05 - reserve + 1e-6
    assert elapsed < 0.2


async def test_a_late_wake_up_after_the_fetch_deadline_counts_in_the_reserve() -> None:
    # A loop that runs late wakes up late for the fetch deadline too; that lateness is
    # deciding time the reserve must keep back, or a busy replica overruns its budget.
    pipeline = decider(Dependencies(profile_delay=1.0))
    await pipeline.decide(request())  # warm: action examples parsed
    pipeline.reserve = DecideReserve(0.003)
    loop = asyncio.get_running_loop()
    # The loop is blocked from 40 ms to 60 ms: the fetch deadline (47 ms) fires 13 ms late.
    loop.call_later(0.04, time.sleep, 0.02)
    decision = await pipeline.decide(request())
    assert decision.degraded == (Degraded.PROFILE,)
    assert pipeline.reserve.for_budget(0.05) >= 0.01


async def test_a_call_that_waited_its_budget_answers_the_fallback_at_once() -> None:
    dependencies = Dependencies(profile_delay=1.0)
    sink = Sink()
    pipeline = decider(dependencies, sink)
    started = time.monotonic()
    decision = await pipeline.decide(request(), queued_s=0.06)
    assert time.monotonic() - started < 0.03
    assert decision.fallback
    assert decision.degraded == (Degraded.FALLBACK,)
    assert ("chosen.fallback", "queued") in decision.reasons
    assert dependencies.timeouts == []  # nothing was fetched
    assert [d.event_id for d in sink.logged] == [decision.event_id]  # and it is logged


async def test_behind_a_standing_queue_a_call_past_the_target_gets_the_fallback() -> None:
    now = [0.0]
    pipeline = decider(Dependencies())
    pipeline.queue = StandingQueue(0.005, clock=lambda: now[0])
    # 8 ms waited, well inside the 50 ms budget: decided in full while no queue stands
    # (a call in the same interval came through in 1 ms).
    assert not (await pipeline.decide(request(), queued_s=0.008)).fallback
    assert not (await pipeline.decide(request(), queued_s=0.001)).fallback
    now[0] += 0.1
    assert not (await pipeline.decide(request(), queued_s=0.008)).fallback
    # That interval's every call waited past 5 ms: a standing queue, so the next one that
    # did is answered the fallback at once, and one that did not is decided.
    now[0] += 0.1
    behind = await pipeline.decide(request(), queued_s=0.008)
    assert behind.fallback
    assert ("chosen.fallback", "queued") in behind.reasons
    assert not (await pipeline.decide(request(), queued_s=0.001)).fallback


async def test_the_time_a_call_waited_is_taken_from_its_budget() -> None:
    dependencies = Dependencies(profile_delay=1.0)
    pipeline = decider(dependencies)
    await pipeline.decide(request())  # warm
    dependencies.timeouts.clear()
    started = time.monotonic()
    decision = await pipeline.decide(request(), queued_s=0.03)
    elapsed = time.monotonic() - started
    assert decision.degraded == (Degraded.PROFILE,)
    assert not decision.fallback
    # The profile got what was left of the 50 ms after 30 ms waiting, less the reserve.
    assert max(dependencies.timeouts) <= 0.02
    assert elapsed < 0.045


class SlowToCancel(Dependencies):
    """A profile read that never answers and, once cancelled, takes `cleanup_s` to clean
    up (a Redis command cancelled mid-reply closes its connection first)."""

    def __init__(self, cleanup_s: float) -> None:
        super().__init__()
        self.cleanup_s = cleanup_s
        self.cancelled = asyncio.Event()
        self.cleaned = asyncio.Event()

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            self.cancelled.set()
            await asyncio.shield(asyncio.sleep(self.cleanup_s))
            self.cleaned.set()
            raise
        return customer()


async def test_a_dependency_slow_to_cancel_does_not_hold_the_decision() -> None:
    dependencies = SlowToCancel(cleanup_s=0.3)
    pipeline = decider(dependencies)
    started = time.monotonic()
    decision = await pipeline.decide(request())
    # Answered within the budget, without the profile, long before its clean-up ended ...
    assert time.monotonic() - started < 0.1
    assert decision.degraded == (Degraded.PROFILE,)
    assert not dependencies.cleaned.is_set()
    # ... which the read, cancelled, finishes on its own.
    await asyncio.wait_for(dependencies.cleaned.wait(), 2.0)


async def test_a_cancelled_decide_cancels_its_dependency_calls() -> None:
    dependencies = SlowToCancel(cleanup_s=0.0)
    pipeline = decider(dependencies)
    pipeline.settings = dataclasses.replace(pipeline.settings, budget_s=5.0)
    call = asyncio.create_task(pipeline.decide(request()))
    await asyncio.sleep(0.02)
    call.cancel()  # the caller hung up
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(dependencies.cancelled.wait(), 1.0)


async def test_a_late_context_falls_back_to_the_local_context() -> None:
    decision = await decider(Dependencies(context_delay=1.0)).decide(request())
    assert decision.degraded == (Degraded.CONTEXT,)
    assert not decision.fallback


async def test_the_caller_deadline_bounds_the_budget() -> None:
    dependencies = Dependencies()
    pipeline = decider(dependencies)
    assert pipeline.budget(request(budget_s=0.2), None) == 0.2
    assert pipeline.budget(request(budget_s=0.2), 0.01) == 0.01
    assert pipeline.budget(request(), None) == 0.05
    await pipeline.decide(request(budget_s=0.2), deadline_s=0.01)
    assert all(t <= 0.01 for t in dependencies.timeouts)


async def test_no_time_left_answers_the_fallback_as_a_fault() -> None:
    sink = Sink()
    decision = await decider(Dependencies(), sink).decide(request(), deadline_s=0.0)
    assert decision.fallback
    assert decision.offer.offer_id == "loyalty-points"
    assert Degraded.FALLBACK in decision.degraded
    assert decision.channel is Channel.IN_APP
    assert decision.probability == 1.0
    assert sink.logged[0].fallback


async def test_a_failing_model_chooses_uniformly_and_says_so() -> None:
    decision = await decider(Dependencies(), bandit=BrokenBandit(DEFAULT_VW_ARGS)).decide(request())
    assert Degraded.MODEL in decision.degraded
    assert decision.probability == pytest.approx(1 / decision.candidate_count)


async def test_a_failing_log_degrades_but_answers() -> None:
    decision = await decider(Dependencies(), Sink(fail=True)).decide(
        request(touchpoint=Touchpoint.POS)
    )
    assert decision.degraded == (Degraded.DECISION_LOG,)
    assert decision.channel in {Channel.RECEIPT, Channel.CASHIER_PROMPT, Channel.STORE_SCREEN}


@pytest.mark.parametrize(("shed_lag_s", "shed"), [(0.2, True), (0.5, False), (0.0, False)])
async def test_an_overloaded_loop_answers_the_fallback_at_once(
    shed_lag_s: float, shed: bool
) -> None:
    dependencies, sink = Dependencies(), Sink()
    lag = LoopLag(sustained=3)
    lag.samples.extend([0.3, 0.3, 0.3])  # three wake-ups in a row, each 0.3 s late
    pipeline = Decider(
        load_catalog(DEFAULT_CATALOG),
        Bandit(DEFAULT_VW_ARGS),
        dependencies,
        sink,
        PipelineSettings(
            budget_s=0.05,
            max_actions=50,
            default_time_zone="Europe/Berlin",
            log_timeout_s=0.02,
            shed_lag_s=shed_lag_s,
        ),
        loop_lag=lag,
    )
    decision = await pipeline.decide(request())
    assert decision.fallback is shed
    if shed:
        # Nothing fetched or scored; logged all the same, so Activate and Reward find it.
        assert dependencies.timeouts == []
        assert decision.degraded == (Degraded.FALLBACK,)
        assert ("chosen.fallback", "overloaded") in decision.reasons
        assert [d.event_id for d in sink.logged] == [decision.event_id]
    else:
        assert dependencies.timeouts
