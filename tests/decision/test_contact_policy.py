"""The contact policy inside Decide: caps against Redis, the race, quiet hours, reasons."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
import yaml

from emma.common.v1 import common_pb2
from emma.decision.bandit import Bandit
from emma.decision.catalog import Catalog, parse_catalog
from emma.decision.config import DEFAULT_VW_ARGS
from emma.decision.contacts import ContactGate, ContactRecord, ContactStore
from emma.decision.decision_log import LoggedDecision
from emma.decision.domain import Channel, CustomerView, DecideInput, QuietHours, Situation
from emma.decision.pipeline import Decider, Degraded, PipelineSettings
from emma.decision.v1 import decision_pb2
from emma.runtime.privacy import pseudonymise

from .helpers import customer, request, situation

BERLIN = ZoneInfo("Europe/Berlin")
SETTINGS = PipelineSettings(
    budget_s=2.0, max_actions=50, default_time_zone="Europe/Berlin", log_timeout_s=0.5
)


def catalog(**policy: Any) -> Catalog:
    offers = [
        {"id": f"o{i}", "title": f"Offer {i}", "category": "cheese", "channels": ["push", "in_app"]}
        for i in range(3)
    ]
    offers.append({"id": "points", "title": "Points", "category": "loyalty",
                   "channels": ["receipt", "in_app"], "fallback": True})  # fmt: skip
    data: dict[str, Any] = {"offers": offers}
    data["contact_policy"] = policy or {
        "caps": [{"name": "push-daily", "channels": ["push"], "max": 1, "window": "1d"}]
    }
    return parse_catalog(data, "test.yaml")


class Dependencies:
    def __init__(self, view: CustomerView, where: Situation | None = None) -> None:
        self.view = view
        self.where = where or situation()

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        await asyncio.sleep(0)
        return self.view

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        return self.where

    def cached_situation(self, request: DecideInput) -> Situation | None:
        return None


class Sink:
    def __init__(self) -> None:
        self.logged: list[LoggedDecision] = []

    async def append(self, decision: LoggedDecision) -> None:
        self.logged.append(decision)


ANNA = customer(marketing_all=True, customer_id="c-anna")


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[ContactStore]:
    client = aioredis.Redis.from_url(redis_url)
    yield ContactStore(client, "emma:contacts", 3600)
    await client.aclose()


def decider(store: ContactStore, the_catalog: Catalog, dependencies: Dependencies) -> Decider:
    return Decider(
        the_catalog,
        Bandit(DEFAULT_VW_ARGS),
        dependencies,
        Sink(),
        SETTINGS,
        contacts=ContactGate(store),
    )


PUSH_ONLY = request(allowed_channels=frozenset({Channel.PUSH}))


async def test_a_capped_channel_is_used_once_then_filtered(store: ContactStore) -> None:
    pipeline = decider(store, catalog(), Dependencies(ANNA))
    first = await pipeline.decide(PUSH_ONLY)
    assert first.channel is Channel.PUSH and not first.fallback
    second = await pipeline.decide(PUSH_ONLY)
    assert second.fallback
    # The fallback never uses a capped channel: with only push allowed there is none.
    assert second.channel is None
    assert dict(second.reasons)["filtered.frequency_cap"] == "3 actions"
    # Counted under the canonical customer's pseudonym, whatever identifier was used.
    history = await store.history(pseudonymise("c-anna"), catalog().policy, PUSH_ONLY.request_time)
    assert [c.channel for c in history.contacts] == [Channel.PUSH]


async def test_two_parallel_decisions_for_the_last_slot_one_gets_the_channel(
    store: ContactStore,
) -> None:
    for round_ in range(5):
        view = dataclasses.replace(ANNA, customer_id=f"c-race-{round_}")
        pipelines = [decider(store, catalog(), Dependencies(view)) for _ in range(2)]
        decisions = await asyncio.gather(*(p.decide(PUSH_ONLY) for p in pipelines))
        assert sorted(d.channel is Channel.PUSH for d in decisions) == [False, True]
        loser = next(d for d in decisions if d.channel is not Channel.PUSH)
        assert loser.fallback and "filtered.frequency_cap" in dict(loser.reasons)


async def test_a_lost_reservation_chooses_again_among_the_rest(store: ContactStore) -> None:
    # The counters were read empty, then another replica took the push slot.
    class LateReader(ContactGate):
        async def record(self, *args: Any) -> Any:
            from emma.decision.policy import NO_CONTACTS

            await store.reserve(
                pseudonymise("c-anna"), "other", Channel.PUSH, *(PUSH_ONLY.request_time,) * 2,
                catalog().policy,
            )  # fmt: skip
            return ContactRecord(NO_CONTACTS, "salt")

    pipeline = Decider(
        catalog(), Bandit(DEFAULT_VW_ARGS), Dependencies(ANNA), Sink(), SETTINGS,
        contacts=LateReader(store),
    )  # fmt: skip
    decisions = [await pipeline.decide(request()) for _ in range(20)]
    assert all(d.channel is Channel.IN_APP and not d.fallback for d in decisions)
    raced = [d for d in decisions if "filtered.frequency_cap" in dict(d.reasons)]
    # Some draws chose push first; each of them lost the slot and drew in-app instead.
    assert raced
    assert all(d.probability == pytest.approx(1 / 3) for d in raced)


async def test_counters_down_answer_with_uncapped_channels_and_say_so(dead_addr: str) -> None:
    host, port = dead_addr.split(":")
    broken = aioredis.Redis(host=host, port=int(port), socket_connect_timeout=0.2)
    try:
        pipeline = decider(
            ContactStore(broken, "emma:contacts", 3600), catalog(), Dependencies(ANNA)
        )
        # The client retries a refused connection until the budget runs out: keep it short.
        pipeline.settings = dataclasses.replace(SETTINGS, budget_s=0.1)
        for _ in range(3):
            decision = await pipeline.decide(request())
            assert Degraded.POLICY in decision.degraded
            assert decision.channel is Channel.IN_APP
            assert dict(decision.reasons)["filtered.policy_unavailable"] == "3 actions"
    finally:
        await broken.aclose()


async def test_without_caps_an_unreadable_record_degrades_nothing(dead_addr: str) -> None:
    host, port = dead_addr.split(":")
    broken = aioredis.Redis(host=host, port=int(port), socket_connect_timeout=0.2)
    try:
        uncapped = catalog(quiet_hours={"channels": ["push"]})
        pipeline = decider(
            ContactStore(broken, "emma:contacts", 3600), uncapped, Dependencies(ANNA)
        )
        # The record (only its log salt matters without caps) is read until the budget ends.
        pipeline.settings = dataclasses.replace(SETTINGS, budget_s=0.1)
        decision = await pipeline.decide(PUSH_ONLY)
        assert decision.channel is Channel.PUSH and decision.degraded == ()
    finally:
        await broken.aclose()


async def test_quiet_hours_schedule_the_push_and_say_why(store: ContactStore) -> None:
    night = situation(
        local_time=datetime(2026, 6, 15, 23, 30, tzinfo=BERLIN), time_zone="Europe/Berlin"
    )
    sleeper = dataclasses.replace(
        ANNA,
        quiet_hours=QuietHours(22 * 60, 7 * 60),
        active_hours=tuple(3.0 if hour == 19 else 0.0 for hour in range(24)),
    )
    pipeline = decider(store, catalog(), Dependencies(sleeper, night))
    decision = await pipeline.decide(PUSH_ONLY)
    assert decision.channel is Channel.PUSH
    # 19:00 Berlin summer time the next day.
    assert decision.send_at == datetime(2026, 6, 16, 17, 0, tzinfo=UTC)
    assert "scheduled.quiet_hours" in dict(decision.reasons)
    # The cap counts the contact at its send time.
    history = await store.history(pseudonymise("c-anna"), catalog().policy, decision.send_at)
    assert [c.at for c in history.contacts] == [decision.send_at.timestamp()]


async def test_deferred_decisions_are_not_counted_until_activated(store: ContactStore) -> None:
    pipeline = decider(store, catalog(), Dependencies(ANNA))
    deferred = dataclasses.replace(PUSH_ONLY, deferred_activation=True)
    first = await pipeline.decide(deferred)
    second = await pipeline.decide(deferred)
    # Neither was shown yet, so neither used the daily push slot.
    assert first.channel is Channel.PUSH and second.channel is Channel.PUSH
    await pipeline.contacts.activated(first.event_id, deferred.request_time, catalog().policy)  # type: ignore[union-attr]
    third = await pipeline.decide(deferred)
    assert third.channel is None and "filtered.frequency_cap" in dict(third.reasons)


async def test_reasons_explain_without_personal_data(store: ContactStore) -> None:
    pipeline = decider(store, catalog(), Dependencies(ANNA))
    decision = await pipeline.decide(request(customer_value="c-anna"))
    codes = [code for code, _ in decision.reasons]
    assert {"feature.action", "feature.shared"} <= set(codes)
    details = " ".join(detail for _, detail in decision.reasons)
    assert "c-anna" not in details and pseudonymise("c-anna") not in details
    action = dict(decision.reasons)["feature.action"].split(",")
    # What sets the chosen action apart comes first: its own offer id, then its channel.
    assert action[0] in {f"offer={decision.offer.offer_id}", f"ch={decision.channel}"}


async def test_activate_counts_a_deferred_contact_over_grpc(
    start_decision: Any, tmp_path: Path
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "contact_policy": {
                    "caps": [{"name": "banner", "channels": ["in_app"], "max": 1, "window": "1d"}]
                },
                "offers": [
                    {"id": "a", "title": "A", "category": "cheese", "channels": ["in_app"]},
                    {"id": "points", "title": "P", "category": "loyalty",
                     "channels": ["receipt"], "fallback": True},
                ],
            }
        )
    )  # fmt: skip
    stub = await start_decision(catalog_path=path)
    deferred = decision_pb2.DecideRequest(
        customer=common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-9"),
        touchpoint=common_pb2.TOUCHPOINT_APP,
        deferred_activation=True,
    )
    first = await stub.Decide(deferred)
    second = await stub.Decide(deferred)
    # Not shown yet, so not counted: the banner is still free.
    assert first.offer.offer_id == second.offer.offer_id == "a"
    assert (await stub.Activate(decision_pb2.ActivateRequest(event_id=first.event_id))).activated
    third = await stub.Decide(deferred)
    assert third.fallback
    assert third.channel == common_pb2.CHANNEL_UNSPECIFIED
    assert {r.code: r.detail for r in third.reasons}["filtered.frequency_cap"] == "1 action"
    # A second activation of the same decision counts nothing more.
    again = await stub.Activate(decision_pb2.ActivateRequest(event_id=first.event_id))
    assert not again.activated
