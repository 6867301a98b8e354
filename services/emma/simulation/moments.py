"""Moments in a simulation: the trigger engine on a simulated clock, beside the running mesh.

The customers' events (emma.simulation.habits) go through the profile service's
RecordEvents, in time order; the profile service appends them to its events stream as for
any caller, and a trigger engine (emma.triggers.Engine, the real one) reads that stream,
fires its rules, decides through the decision service and publishes to the outbound
stream. Its clock is the simulation's: it jumps to the next event or the next due timer,
so weeks of moments run in seconds. Each published action is delivered to the simulated
customer (an offer response SHOWN naming the decision, which opens the wallet entry) and
redeemed with the hidden world's probability (REDEEMED, which closes it and makes the
engine reward the decision: the learner learns from it as from any other).

Only one engine may read the events stream while this runs: the mesh's own engine (on the
wall clock) must be stopped, or it takes entries this one never sees.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import numpy as np
import redis.asyncio as aioredis

from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2, context_pb2_grpc
from emma.decision.catalog import Catalog
from emma.decision.domain import Channel
from emma.decision.v1 import decision_pb2_grpc
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma.simulation.habits import (
    COFFEE_PRODUCT,
    HabitSettings,
    Happening,
    timeline,
    timestamp,
)
from emma.simulation.population import STORES, ZONE, Customer
from emma.simulation.world import Moment, World
from emma.triggers.config import TriggerConfig
from emma.triggers.engine import Engine, Stubs
from emma.triggers.kinds import Firing
from emma.triggers.rules import Rules, load_rules

CALL_TIMEOUT_S = 10.0
# How much likelier a customer redeems an offer that meets the moment (logit shift): in the
# store, the offer is at hand; a reminder of what they buy anyway is welcome; a gesture
# pleases. Offers reserved for moments have no category taste of their own.
MOMENT_LIFT = {
    "geofence": 2.0,
    "replenishment": 1.5,
    "viewed_not_bought": 1.0,
    "life_event": 1.0,
    "anniversary": 1.5,
    "negative_sentiment": 1.5,
}
# A redemption follows the delivery by this much at most (and before the offer expires).
REDEEM_WITHIN = timedelta(hours=6)
# The engine's outcomes that are not a published action.
FIRED = "fired"


@dataclasses.dataclass(frozen=True)
class MomentSettings:
    days: int = 42
    # The moments' span ends today: the profile service refuses events far in the future.
    end: date | None = None
    seed: int = 11
    habits: HabitSettings = dataclasses.field(default_factory=HabitSettings)


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One published action and what the simulated customer did with it."""

    event_id: str  # the decision
    rule: str
    kind: str
    customer_id: str
    offer_id: str
    channel: str
    send_at: datetime
    chance: float
    redeemed: bool


@dataclasses.dataclass(frozen=True)
class MomentsResult:
    """What happened: events sent, the engine's outcome per firing, the deliveries."""

    first: date
    days: int
    events: dict[str, int]  # event payload -> events recorded
    outcomes: dict[str, dict[str, int]]  # rule kind -> engine outcome -> firings
    engine: dict[str, int]  # the engine's own counters (scheduled, cancelled, stale, ...)
    deliveries: list[Delivery]
    rewarded: int  # redemptions the engine turned into a Reward of their decision


class SimulatedClock:
    """The engine's clock: moved by the simulation, never by the wall."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class CountingEngine(Engine):
    """The engine, counting each firing's outcome per rule kind for one population."""

    def __init__(self, *args: Any, population: Collection[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.population = population
        self.outcomes: collections.Counter[tuple[str, str]] = collections.Counter()

    async def fire(self, firing: Firing) -> str:
        outcome = await super().fire(firing)
        # A shared mesh may hold another population's timers; they fire but are not ours.
        kind, value = firing.customer
        if kind == common_pb2.IDENTIFIER_KIND_CUSTOMER_ID and value in self.population:
            rule = self.rules.named(firing.rule)
            self.outcomes[(rule.kind if rule else firing.rule, outcome)] += 1
        return outcome


def watched_products(catalog: Catalog) -> list[tuple[str, str]]:
    """(product, category) pairs of the ordinary offers: what customers look at in the app."""
    pairs = {
        (product, offer.category)
        for offer in catalog.candidates
        if not offer.category.startswith("moment.")
        for product in offer.products
    }
    return sorted(pairs | {COFFEE_PRODUCT})


async def store_locations(channel: grpc.aio.Channel) -> dict[str, tuple[float, float]]:
    """Where the simulated customers' home stores are, as the context service knows them."""
    stub = context_pb2_grpc.ContextServiceStub(channel)
    found = {}
    for store_id in STORES:
        reply = await stub.GetStore(
            context_pb2.GetStoreRequest(store_id=store_id), timeout=CALL_TIMEOUT_S
        )
        found[store_id] = (reply.store.location.latitude, reply.store.location.longitude)
    return found


def _midnight(day: date) -> datetime:
    """The day's start on the simulated customers' wall clock."""
    return datetime(day.year, day.month, day.day, tzinfo=ZONE)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class MomentsRun:
    """One run of moments against a mesh; `run()` returns what happened."""

    def __init__(
        self,
        addresses: tuple[str, str, str],  # decision, profile, context
        redis_url: str,
        catalog: Catalog,
        customers: Sequence[Customer],
        settings: MomentSettings,
        prefix: str,
        world: World | None = None,
        rules: Rules | None = None,
    ) -> None:
        self.decision_address, self.profile_address, self.context_address = addresses
        self.redis_url = redis_url
        self.catalog = catalog
        self.customers = {customer.customer_id: customer for customer in customers}
        self.settings = settings
        self.prefix = prefix
        self.world = world or World()
        self.config = TriggerConfig(
            redis_url=redis_url,
            profile_addr=self.profile_address,
            context_addr=self.context_address,
            decision_addr=self.decision_address,
            consumer=f"{prefix}-simulation",
        )
        self.rules = rules or load_rules(self.config.rules_path)
        end = settings.end or datetime.now(UTC).date()
        self.first = end - timedelta(days=settings.days)
        self.clock = SimulatedClock(_midnight(self.first))
        self.events: collections.Counter[str] = collections.Counter()
        self.deliveries: list[Delivery] = []

    async def run(self) -> MomentsResult:
        client = aioredis.Redis.from_url(self.redis_url, decode_responses=False)
        channels = [
            grpc.aio.insecure_channel(address)
            for address in (self.profile_address, self.context_address, self.decision_address)
        ]
        try:
            stubs = Stubs(
                profile=profile_pb2_grpc.ProfileServiceStub(channels[0]),
                context=context_pb2_grpc.ContextServiceStub(channels[1]),
                decision=decision_pb2_grpc.DecisionServiceStub(channels[2]),
            )
            engine = CountingEngine(
                self.config, self.rules, client, stubs, self.clock, population=self.customers
            )
            stores = await store_locations(channels[1])
            happenings = timeline(
                list(self.customers.values()),
                self.first,
                self.settings.days,
                stores,
                watched_products(self.catalog),
                self.settings.habits,
                self.settings.seed,
                f"{self.prefix}-m",
            )
            await self._start_reading(engine, client)
            rewarded_before = engine.stats["rewarded"]
            await self._live(engine, client, stubs, happenings)
            return MomentsResult(
                first=self.first,
                days=self.settings.days,
                events=dict(self.events),
                outcomes=_nested(engine.outcomes),
                engine=dict(engine.stats),
                deliveries=self.deliveries,
                rewarded=engine.stats["rewarded"] - rewarded_before,
            )
        finally:
            for channel in channels:
                await channel.close(None)
            await client.aclose()

    async def _start_reading(self, engine: Engine, client: aioredis.Redis) -> None:
        """From now on: what the stream held before (e.g. the population's history) is not
        this run's, and neither is the outbound stream's past."""
        await engine.ensure_group()
        await client.xgroup_setid(self.config.events_stream, self.config.group, id="$")
        last: Any = await client.xrevrange(self.config.outbound_stream, count=1)
        self._outbound_after = _text(last[0][0]) if last else "0-0"

    async def _live(
        self,
        engine: Engine,
        client: aioredis.Redis,
        stubs: Stubs,
        happenings: Sequence[Happening],
    ) -> None:
        """Moves the clock from event to event and timer to timer until the span ends."""
        end = _midnight(self.first + timedelta(days=self.settings.days))
        due_key = f"{self.config.state_prefix}:due"
        index = 0
        while True:
            due: Any = await client.zrange(due_key, 0, 0, withscores=True)
            next_due = datetime.fromtimestamp(float(due[0][1]), UTC) if due else None
            next_event = happenings[index].at if index < len(happenings) else None
            upcoming = [t for t in (next_due, next_event) if t is not None]
            if not upcoming or min(upcoming) > end:
                break
            self.clock.now = max(self.clock.now, min(upcoming))
            if next_event is not None and next_event <= self.clock.now:
                batch = []
                while index < len(happenings) and happenings[index].at <= self.clock.now:
                    batch.append(happenings[index].event)
                    index += 1
                await self._record(stubs, batch)
            await self._drain(engine)
            # Deliveries are answered within the same instant, and what the answers fire
            # is delivered too, so no published action is left undelivered at the end.
            while responses := await self._respond(client):
                await self._record(stubs, responses)
                await self._drain(engine)

    async def _drain(self, engine: Engine) -> None:
        while await engine.step(block_ms=None):
            pass

    async def _record(self, stubs: Stubs, events: Sequence[profile_pb2.Event]) -> None:
        for event in events:
            self.events[str(event.WhichOneof("payload"))] += 1
        await stubs.profile.RecordEvents(
            profile_pb2.RecordEventsRequest(events=events), timeout=CALL_TIMEOUT_S
        )

    async def _respond(self, client: aioredis.Redis) -> list[profile_pb2.Event]:
        """Delivers each new outbound action and lets its customer redeem it, or not."""
        entries: Any = await client.xrange(
            self.config.outbound_stream, min=f"({self._outbound_after}"
        )
        events: list[profile_pb2.Event] = []
        for entry_id, raw in entries:
            self._outbound_after = _text(entry_id)
            fields = {_text(k): _text(v) for k, v in raw.items()}
            slug, _, customer_id = fields["recipient"].partition(":")
            customer = self.customers.get(customer_id) if slug == "customer_id" else None
            if customer is None:
                continue  # another population's action (a shared mesh)
            events += self._deliver(customer, fields)
        return events

    def _deliver(self, customer: Customer, fields: dict[str, str]) -> list[profile_pb2.Event]:
        send_at = datetime.fromisoformat(fields["send_at"])
        expires = datetime.fromisoformat(fields["expires_at"])
        offer = self.catalog.get(fields["offer_id"])
        chance = 0.0
        if offer is not None:
            moment = Moment(instant=send_at, local=send_at.astimezone(ZONE), touchpoint="app")
            logit = self.world.logit(customer.tastes, moment, offer, Channel(fields["channel"]))
            chance = 1.0 / (1.0 + math.exp(-(logit + MOMENT_LIFT.get(fields["kind"], 0.0))))
        rng = np.random.default_rng([self.settings.seed, len(self.deliveries)])
        redeemed = bool(rng.random() < chance)
        self.deliveries.append(
            Delivery(
                event_id=fields["event_id"],
                rule=fields["rule"],
                kind=fields["kind"],
                customer_id=customer.customer_id,
                offer_id=fields["offer_id"],
                channel=fields["channel"],
                send_at=send_at,
                chance=chance,
                redeemed=redeemed,
            )
        )
        shown = self._response(customer, fields, profile_pb2.OFFER_RESPONSE_KIND_SHOWN, send_at)
        shown.offer_response.expires_at.CopyFrom(timestamp(expires))
        if not redeemed:
            return [shown]
        latest = min(send_at + REDEEM_WITHIN, expires - timedelta(minutes=1))
        at = send_at + (latest - send_at) * float(rng.random())
        redeemed_event = self._response(
            customer, fields, profile_pb2.OFFER_RESPONSE_KIND_REDEEMED, at
        )
        return [shown, redeemed_event]

    def _response(
        self, customer: Customer, fields: dict[str, str], kind: int, at: datetime
    ) -> profile_pb2.Event:
        event = profile_pb2.Event(
            event_id=f"{fields['event_id']}-{kind}",
            customer=common_pb2.CustomerRef(
                kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value=customer.customer_id
            ),
            time=timestamp(at),
        )
        event.offer_response.kind = kind  # type: ignore[assignment]
        event.offer_response.offer_id = fields["offer_id"]
        event.offer_response.decision_event_id = fields["event_id"]
        channel = f"CHANNEL_{fields['channel'].upper()}"
        event.offer_response.channel = common_pb2.Channel.Value(channel)
        return event


def _nested(counts: collections.Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = {}
    for (kind, outcome), count in sorted(counts.items()):
        nested.setdefault(kind, {})[outcome] = count
    return nested
