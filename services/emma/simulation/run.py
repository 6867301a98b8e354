"""One simulation: load the population, drive the decisions, compute the learning curve."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, date, datetime
from pathlib import Path

from emma.decision.catalog import Catalog, load_catalog
from emma.simulation.curve import Summary, Window, curve, summarise
from emma.simulation.driver import Driver, DriveSettings, Progress, Step
from emma.simulation.moments import MomentSettings, MomentsResult, MomentsRun
from emma.simulation.oracle import check_catalog
from emma.simulation.population import PopulationSettings, Visits, make_population
from emma.simulation.profiles import load_population
from emma.simulation.world import World
from emma_client import AsyncEmmaClient

CATALOG = Path(__file__).resolve().parent / "catalog.yaml"

# Settings of a private mesh chosen for learning speed: a decision without a response is
# learned as "no reward" 2 s after it was made (not an hour), new models are published and
# picked up about every second. Every decision is learned when its window closes (`sum`,
# the default, spelled out so a mesh given another default still runs the same way).
MESH_ENV = {
    "EMMA_REWARD_WINDOW_S": "2",
    "EMMA_REWARD_AGGREGATION": "sum",
    "EMMA_LEARNER_PUBLISH_S": "1",
    "EMMA_MODEL_POLL_S": "0.5",
}


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    catalog: Path = CATALOG
    population: PopulationSettings = dataclasses.field(default_factory=PopulationSettings)
    drive: DriveSettings = dataclasses.field(default_factory=DriveSettings)
    # Customer ids are `<prefix>-<n>`; another prefix gives a fresh population in a mesh.
    prefix: str = "sim"
    population_seed: int = 1
    # The simulated calendar requests are drawn from.
    start: date = date(2026, 1, 1)
    days: int = 365
    pos_share: float = 0.35
    # Decisions per point of the curve, and decisions the summary covers at the end.
    window: int = 1000
    tail: int = 2000
    # Moments (the trigger engine on a simulated clock) beside the decisions; None: off.
    moments: MomentSettings | None = None


@dataclasses.dataclass(frozen=True)
class MomentsTarget:
    """What moments need beyond the decision and profile services."""

    context_address: str
    redis_url: str


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    steps: list[Step]
    windows: list[Window]
    summary: Summary
    moments: MomentsResult | None = None


def load_simulation_catalog(path: Path) -> Catalog:
    """The catalog, checked to use only rules the simulation's oracle follows."""
    catalog = load_catalog(path)
    check_catalog(catalog)
    return catalog


async def simulate(
    decision_address: str,
    profile_address: str,
    settings: SimulationSettings,
    progress: Progress | None = None,
    target: MomentsTarget | None = None,
) -> SimulationResult:
    """Runs the simulation against a mesh whose decision service uses `settings.catalog`.

    With `settings.moments`, the customers also live through the moments' span while the
    decisions run, under a trigger engine on the simulated clock (emma.simulation.moments);
    `target` says where the context service and Redis are, and no other trigger engine may
    read the mesh's events stream meanwhile.
    """
    if settings.moments is not None and target is None:
        raise ValueError("moments need the context service's address and the Redis URL")
    catalog = load_simulation_catalog(settings.catalog)
    categories = sorted({offer.category for offer in catalog.everyday_candidates})
    customers = make_population(
        categories, settings.population, settings.population_seed, settings.prefix
    )
    await load_population(profile_address, customers, datetime.now(UTC))
    visits = Visits(customers, settings.start, settings.days, settings.pos_share)
    started = time.monotonic()
    async with AsyncEmmaClient(
        decision_address, deadline=settings.drive.deadline_s, wait_for_ready=True
    ) as client:
        driver = Driver(client, World(), catalog, visits, settings.drive, progress)
        if settings.moments is None or target is None:
            steps, moments = await driver.run(), None
        else:
            addresses = (decision_address, profile_address, target.context_address)
            run = MomentsRun(
                addresses, target.redis_url, catalog, customers, settings.moments, settings.prefix
            )
            steps, moments = await asyncio.gather(driver.run(), run.run())
    elapsed = time.monotonic() - started
    windows = curve(steps, settings.window)
    return SimulationResult(steps, windows, summarise(steps, settings.tail, elapsed), moments)
