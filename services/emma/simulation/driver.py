"""Drives a running mesh: simulated requests through Decide, simulated responses through Reward."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import numpy as np

from emma.decision.catalog import Catalog
from emma.decision.domain import Channel
from emma.simulation.oracle import counterfactual
from emma.simulation.population import Visits
from emma.simulation.world import World
from emma_client import AsyncEmmaClient


@dataclasses.dataclass(frozen=True)
class Step:
    """One simulated decision: what was served, what it earned, what others would have."""

    index: int
    event_id: str
    touchpoint: str
    offer_id: str
    channel: str
    # The served action's hidden response probability, and the Bernoulli draw from it.
    chance: float
    reward: float
    # Expected rewards of the reference policies on the same request.
    oracle: float
    random: float
    baseline: float
    # Actions the simulator knows to be eligible, and how many the service chose among.
    eligible: int
    candidates: int
    fallback: bool
    degraded: tuple[str, ...]
    model_version: str
    latency_s: float


@dataclasses.dataclass(frozen=True)
class DriveSettings:
    decisions: int = 20_000
    # Decisions in flight at once.
    concurrency: int = 16
    seed: int = 7
    # Decide's latency budget: generous, as the simulation measures learning, not latency.
    budget_ms: float = 1000.0
    deadline_s: float = 10.0
    # Also send Reward(0) when the customer did not respond (the learner otherwise learns
    # the default reward when the window closes).
    report_misses: bool = False


Progress = Callable[[int], None]


class Driver:
    """Makes `settings.decisions` decisions; the i-th request and its outcome depend only on
    (seed, i), so a run is reproducible whatever the concurrency."""

    def __init__(
        self,
        client: AsyncEmmaClient,
        world: World,
        catalog: Catalog,
        visits: Visits,
        settings: DriveSettings,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.world = world
        self.catalog = catalog
        self.visits = visits
        self.settings = settings
        self.progress = progress
        self._offers = {offer.offer_id: offer for offer in catalog.offers}

    async def one(self, index: int) -> Step:
        rng = np.random.default_rng([self.settings.seed, index])
        customer, moment = self.visits.draw(rng)
        started = time.perf_counter()
        decision = await self.client.decide(
            customer.ref,
            touchpoint=moment.touchpoint,
            store_id=moment.store_id,
            request_time=moment.instant,
            budget_ms=self.settings.budget_ms,
            deadline=self.settings.deadline_s,
        )
        latency = time.perf_counter() - started
        offer = self._offers.get(decision.offer_id)
        chance = 0.0
        if offer is not None and decision.channel:
            chance = self.world.probability(
                customer.tastes, moment, offer, Channel(decision.channel)
            )
        reward = 1.0 if rng.random() < chance else 0.0
        if reward or self.settings.report_misses:
            await self.client.reward(
                decision.event_id,
                reward,
                "click" if reward else "none",
                time=moment.instant,
                deadline=self.settings.deadline_s,
            )
        reference = counterfactual(self.world, self.catalog, customer, moment)
        return Step(
            index=index,
            event_id=decision.event_id,
            touchpoint=moment.touchpoint,
            offer_id=decision.offer_id,
            channel=decision.channel,
            chance=chance,
            reward=reward,
            # With nothing eligible every policy gets the fallback, as the service does.
            oracle=reference.oracle if reference else chance,
            random=reference.random if reference else chance,
            baseline=reference.baseline if reference else chance,
            eligible=reference.eligible if reference else 0,
            candidates=decision.candidate_count,
            fallback=decision.fallback,
            degraded=decision.degraded,
            model_version=decision.model_version,
            latency_s=latency,
        )

    async def run(self) -> list[Step]:
        """Every decision, `concurrency` at a time; the steps in index order."""
        steps: list[Step | None] = [None] * self.settings.decisions
        indices = iter(range(self.settings.decisions))
        done = 0

        async def worker() -> None:
            nonlocal done
            for index in indices:
                steps[index] = await self.one(index)
                done += 1
                if self.progress is not None:
                    self.progress(done)

        workers = [asyncio.create_task(worker()) for _ in range(self.settings.concurrency)]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return [step for step in steps if step is not None]
