"""The decision log's customer field: salted by the contact record, unlinked by erasure."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from emma.common.v1 import common_pb2
from emma.decision.bandit import Bandit
from emma.decision.catalog import Catalog, parse_catalog
from emma.decision.config import DEFAULT_VW_ARGS
from emma.decision.contacts import ContactGate, ContactStore, forget_customer, salted_pseudonym
from emma.decision.decision_log import DecisionStore, EncodedContext, LoggedDecision
from emma.decision.domain import Channel, CustomerView, DecideInput, Situation
from emma.decision.log_line import line_of
from emma.decision.pipeline import Decider, PipelineSettings
from emma.decision.policy import Cap, ContactPolicy
from emma.runtime.privacy import pseudonymise

from .conftest import stream_entries
from .helpers import JUNE_MORNING, customer, request, situation

PREFIX = "emma:contacts"
STREAM = "emma:decisions"
SETTINGS = PipelineSettings(
    budget_s=2.0, max_actions=50, default_time_zone="Europe/Berlin", log_timeout_s=0.5
)
CARD = common_pb2.IDENTIFIER_KIND_LOYALTY_CARD
ANNA = customer(marketing_all=True, customer_id="c-anna")
PUSH_ONLY = request(customer_value="c-anna", allowed_channels=frozenset({Channel.PUSH}))
EVERY_CHANNEL_WEEKLY = ContactPolicy(caps=(Cap("weekly", 2, timedelta(days=7)),))


def catalog(capped: bool = True) -> Catalog:
    offers: list[dict[str, Any]] = [
        {"id": f"o{i}", "title": f"Offer {i}", "category": "cheese", "channels": ["push", "in_app"]}
        for i in range(3)
    ]
    offers.append({"id": "points", "title": "Points", "category": "loyalty",
                   "channels": ["receipt", "in_app"], "fallback": True})  # fmt: skip
    caps = [{"name": "push-daily", "channels": ["push"], "max": 1, "window": "1d"}]
    return parse_catalog(
        {"offers": offers, "contact_policy": {"caps": caps if capped else []}}, "test.yaml"
    )


class Dependencies:
    def __init__(self, view: CustomerView) -> None:
        self.view = view

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        return self.view

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        return situation()

    def cached_situation(self, request: DecideInput) -> Situation | None:
        return None


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def decider(client: aioredis.Redis, the_catalog: Catalog, view: CustomerView = ANNA) -> Decider:
    log = DecisionStore(client, STREAM, "emma:rewards", 10_000, 3600.0)
    return Decider(
        the_catalog,
        Bandit(DEFAULT_VW_ARGS),
        Dependencies(view),
        log,
        SETTINGS,
        contacts=ContactGate(ContactStore(client, PREFIX, 3600), encode=log.encode),
    )


async def everything(client: aioredis.Redis) -> dict[str, Any]:
    """Every value in the database, whatever its type."""
    values: dict[str, Any] = {}
    for key in await client.keys("*"):
        kind = await client.type(key)
        if kind == "zset":
            values[key] = await client.zrange(key, 0, -1)
        elif kind == "stream":
            values[key] = await client.xrange(key)
        else:
            values[key] = await client.get(key)
    return values


async def logged_customers(redis_url: str) -> list[str]:
    return [entry["customer"] for entry in await stream_entries(redis_url, STREAM)]


async def test_the_salt_is_made_once_even_by_concurrent_first_decisions(redis_url: str) -> None:
    # Separate clients: the reads really race on the server.
    clients = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(4)]
    try:
        stores = [ContactStore(c, PREFIX, 3600) for c in clients]
        made: dict[str, str] = {}
        for round_ in range(10):
            subject = pseudonymise(f"c-{round_}")
            records = await asyncio.gather(
                *(s.record(subject, EVERY_CHANNEL_WEEKLY, JUNE_MORNING) for s in stores)
            )
            salts = {record.salt for record in records}
            assert len(salts) == 1 and len(next(iter(salts))) == 32
            made[subject] = records[0].salt
        # Each customer keeps theirs; no two customers share one.
        for subject, salt in made.items():
            assert (
                await stores[0].record(subject, EVERY_CHANNEL_WEEKLY, JUNE_MORNING)
            ).salt == salt
        assert len(set(made.values())) == len(made)
    finally:
        for c in clients:
            await c.aclose()


async def test_the_salt_is_no_contact_and_lives_beyond_the_caps(
    client: aioredis.Redis,
) -> None:
    store = ContactStore(client, PREFIX, 3600)
    subject = pseudonymise("c-1")
    first = await store.record(subject, EVERY_CHANNEL_WEEKLY, JUNE_MORNING)
    assert first.history.contacts == ()
    # A cap over every channel counts contacts only, never the salt beside them.
    now = JUNE_MORNING
    assert await store.reserve(subject, "e1", Channel.PUSH, now, now, EVERY_CHANNEL_WEEKLY)
    assert await store.reserve(subject, "e2", Channel.EMAIL, now, now, EVERY_CHANNEL_WEEKLY)
    assert not await store.reserve(subject, "e3", Channel.SMS, now, now, EVERY_CHANNEL_WEEKLY)
    record = await store.record(subject, EVERY_CHANNEL_WEEKLY, now)
    assert record.salt == first.salt
    assert sorted(c.channel for c in record.history.contacts) == [Channel.EMAIL, Channel.PUSH]
    # The record outlives the caps' window (the salt's lifetime, refreshed by each read),
    # and old contacts are trimmed without the salt.
    assert timedelta(milliseconds=await client.pttl(store.key(subject))) > timedelta(days=30)
    later = now + timedelta(days=8)
    assert await store.reserve(subject, "e4", Channel.SMS, later, later, EVERY_CHANNEL_WEEKLY)
    assert (await store.record(subject, EVERY_CHANNEL_WEEKLY, later)).salt == first.salt
    assert await client.zcard(store.key(subject)) == 2  # e4 and the salt


async def test_log_entries_before_erasure_cannot_be_linked_after_it(
    client: aioredis.Redis, redis_url: str
) -> None:
    pipeline = decider(client, catalog())
    first = await pipeline.decide(PUSH_ONLY)
    second = await pipeline.decide(PUSH_ONLY)
    # The cap works: one push a day (a fallback without a channel is not logged).
    assert first.channel is Channel.PUSH and second.channel is None
    assert (await pipeline.decide(request(customer_value="c-anna"))).channel is Channel.IN_APP
    before = await logged_customers(redis_url)
    assert len(before) == 2 and len(set(before)) == 1
    pseudonym = before[0]
    # Not the key-only pseudonym anyone with the key and the id could compute.
    assert pseudonym not in {pseudonymise("c-anna"), pseudonymise(pseudonymise("c-anna"))}
    salt_key = f"{PREFIX}:{{{pseudonymise('c-anna')}}}"
    salt = next(m for m in await client.zrange(salt_key, 0, -1) if m.startswith("salt|"))
    assert salted_pseudonym(pseudonymise("c-anna"), salt.removeprefix("salt|")) == pseudonym

    # The card's record too: a decision by card before the profile said whose it is.
    card_request = request(customer_kind=CARD, customer_value="1001")
    await decider(client, catalog(), dataclasses.replace(ANNA, customer_id="")).decide(card_request)
    assert await forget_customer(client, PREFIX, "c-anna", [f"{CARD}:1001"]) == 2
    assert await forget_customer(client, PREFIX, "c-anna", [f"{CARD}:1001"]) == 0
    assert await client.keys(f"{PREFIX}:*") == []

    # Whatever the key and the identifiers give, the old pseudonym is not reproduced.
    assert salt.removeprefix("salt|") not in json.dumps(await everything(client))
    third = await pipeline.decide(PUSH_ONLY)
    # The caps start again from zero after erasure, and count again.
    assert third.channel is Channel.PUSH
    fourth = await pipeline.decide(PUSH_ONLY)
    assert fourth.channel is None
    await pipeline.decide(request(customer_value="c-anna"))
    after = (await logged_customers(redis_url))[-2:]
    assert len(set(after)) == 1 and pseudonym not in after
    assert pseudonym not in {
        pseudonymise("c-anna"),
        salted_pseudonym(pseudonymise("c-anna"), ""),
        *(salted_pseudonym(s, None) for s in [pseudonymise("c-anna")] * 3),
    }


async def test_without_caps_the_salt_is_still_read(client: aioredis.Redis, redis_url: str) -> None:
    pipeline = decider(client, catalog(capped=False))
    await pipeline.decide(PUSH_ONLY)
    await pipeline.decide(PUSH_ONLY)
    customers = await logged_customers(redis_url)
    assert len(set(customers)) == 1
    assert await forget_customer(client, PREFIX, "c-anna") == 1
    await pipeline.decide(PUSH_ONLY)
    assert (await logged_customers(redis_url))[-1] != customers[0]


async def test_without_the_record_the_entry_is_linked_to_nobody(dead_addr: str) -> None:
    host, port = dead_addr.split(":")
    broken = aioredis.Redis(host=host, port=int(port), socket_connect_timeout=0.2)
    try:
        written: list[LoggedDecision] = []

        class Sink:
            async def append(self, decision: LoggedDecision) -> None:
                written.append(decision)

        pipeline = Decider(
            catalog(capped=False), Bandit(DEFAULT_VW_ARGS), Dependencies(ANNA), Sink(),
            dataclasses.replace(SETTINGS, budget_s=0.1),
            contacts=ContactGate(ContactStore(broken, PREFIX, 3600)),
        )  # fmt: skip
        for _ in range(2):
            decision = await pipeline.decide(PUSH_ONLY)
            assert decision.channel is Channel.PUSH and decision.degraded == ()
        assert len({d.customer for d in written}) == 2
    finally:
        await broken.aclose()


async def test_a_lost_reservation_logs_only_the_action_answered(
    client: aioredis.Redis, redis_url: str
) -> None:
    store = ContactStore(client, PREFIX, 3600)

    class LateReader(ContactGate):
        """Reads the counters empty; meanwhile another replica takes the push slot."""

        async def record(self, subject: str, *args: Any) -> Any:
            record = await super().record(subject, *args)
            await store.reserve(
                subject, "other", Channel.PUSH, *(PUSH_ONLY.request_time,) * 2, catalog().policy
            )
            return dataclasses.replace(
                record, history=dataclasses.replace(record.history, contacts=())
            )

    pipeline = decider(client, catalog())
    pipeline.contacts = LateReader(store, encode=pipeline.contacts.encode)  # type: ignore[union-attr]
    decisions = [await pipeline.decide(request(customer_value="c-anna")) for _ in range(12)]
    assert all(d.channel is Channel.IN_APP for d in decisions)
    raced = [d for d in decisions if "filtered.frequency_cap" in dict(d.reasons)]
    assert raced  # some draws chose push first and lost the slot
    entries = await stream_entries(redis_url, STREAM)
    # One entry per decision, each for the action answered, with the reasons answered.
    assert [e["event_id"] for e in entries] == [d.event_id for d in decisions]
    assert {e["channel"] for e in entries} == {"in_app"}
    for entry, decision in zip(entries, decisions, strict=True):
        line = line_of(entry)
        assert line["p"][0] == pytest.approx(decision.probability)
        logged = [(r["code"], r["detail"]) for r in line["_emma"]["reasons"]]
        assert logged == list(decision.reasons)


async def test_a_deferred_decision_remembers_and_logs_in_one_go(
    client: aioredis.Redis, redis_url: str
) -> None:
    pipeline = decider(client, catalog())
    decision = await pipeline.decide(dataclasses.replace(PUSH_ONLY, deferred_activation=True))
    assert decision.channel is Channel.PUSH
    assert await client.exists(f"{PREFIX}:pending:{decision.event_id}")
    entries = await stream_entries(redis_url, STREAM)
    assert [e["event_id"] for e in entries] == [decision.event_id]
    assert line_of(entries[0])["_skipLearn"] is True


def test_a_pre_encoded_context_gives_the_same_line() -> None:
    shared = {"U": {"profile=known": 1.0}, "C": {"hour": 10.0}, "E": {}}
    actions = [{"A": {"offer=o1": 1.0}, "H": {"ch=push": 1.0}}, {"A": {"offer=o2": 1.0}}]
    plain = LoggedDecision(
        event_id="e",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        context={"U": shared["U"], "C": shared["C"], "_multi": actions},
        pmf=[0.25, 0.75],
        index=1,
        model_version="m",
        deferred=False,
        offer_id="o2",
        channel="push",
        customer="p-0",
        fallback=False,
        reasons=(("chosen.model", "p=0.750"),),
    )
    encoded = dataclasses.replace(
        plain,
        context=EncodedContext(shared, [json.dumps(a, separators=(",", ":")) for a in actions]),
    )
    assert encoded.dsjson_text() == plain.dsjson_text()
    assert encoded.dsjson() == plain.dsjson()
    assert json.loads(encoded.dsjson_text()) == plain.dsjson()
    nothing_shared = dataclasses.replace(encoded, context=EncodedContext({}, ["{}"]))
    assert json.loads(nothing_shared.dsjson_text())["c"] == {"_multi": [{}]}
