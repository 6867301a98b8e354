"""Frequency caps against a real Redis: counting, the reservation race, deferred counting."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from emma.common.v1 import common_pb2
from emma.decision.contacts import ContactGate, ContactStore, redistribute
from emma.decision.domain import Channel
from emma.decision.eligibility import Action
from emma.decision.policy import Cap, ContactPolicy
from emma.runtime.privacy import pseudonymise

from .helpers import JUNE_MORNING, customer, offer, request

PUSH_DAILY = Cap("push-daily", 1, timedelta(days=1), frozenset({Channel.PUSH}))
WEEKLY = Cap("weekly", 2, timedelta(days=7))
POLICY = ContactPolicy(caps=(PUSH_DAILY, WEEKLY))
SUBJECT = pseudonymise("c-1")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def store(client: aioredis.Redis) -> ContactStore:
    return ContactStore(client, "emma:contacts", pending_ttl_s=3600)


async def test_reservations_count_per_channel_and_overall(store: ContactStore) -> None:
    now = JUNE_MORNING
    assert await store.reserve(SUBJECT, "e1", Channel.PUSH, now, now, POLICY)
    # The daily push cap is full; another channel still fits the weekly cap.
    assert not await store.reserve(SUBJECT, "e2", Channel.PUSH, now, now, POLICY)
    assert await store.reserve(SUBJECT, "e3", Channel.EMAIL, now, now, POLICY)
    # Two contacts this week: the overall cap is full for every channel.
    assert not await store.reserve(SUBJECT, "e4", Channel.SMS, now, now, POLICY)
    # A retried reservation of the same decision is not counted twice.
    assert await store.reserve(SUBJECT, "e1", Channel.PUSH, now, now, POLICY)
    history = await store.history(SUBJECT, POLICY, now)
    assert sorted(c.channel for c in history.contacts) == [Channel.EMAIL, Channel.PUSH]
    assert history.exceeded(POLICY.caps_for(Channel.IN_APP), now) is WEEKLY
    # A day later the push cap has room again, the weekly one not yet.
    tomorrow = now + timedelta(days=1, minutes=1)
    assert history.exceeded(POLICY.caps_for(Channel.PUSH), tomorrow) is WEEKLY


async def test_records_expire_and_carry_only_the_pseudonym(
    store: ContactStore, client: aioredis.Redis
) -> None:
    now = JUNE_MORNING
    assert await store.reserve(SUBJECT, "e1", Channel.PUSH, now, now, POLICY)
    keys = [key.decode() for key in await client.keys("*")]
    assert keys == [f"emma:contacts:{{{SUBJECT}}}"]
    assert "c-1" not in keys[0]
    ttl = await client.pttl(keys[0])
    assert timedelta(days=7) < timedelta(milliseconds=ttl) <= timedelta(days=8, hours=1)
    # Contacts older than the longest window are trimmed by the next reservation.
    later = now + timedelta(days=8)
    assert await store.reserve(SUBJECT, "e2", Channel.EMAIL, later, later, POLICY)
    assert await client.zcard(keys[0]) == 1


async def test_a_scheduled_contact_counts_from_its_send_time(store: ContactStore) -> None:
    now = JUNE_MORNING
    tonight = now + timedelta(hours=10)
    assert await store.reserve(SUBJECT, "e1", Channel.PUSH, tonight, now, POLICY)
    history = await store.history(SUBJECT, POLICY, now)
    assert history.exceeded((PUSH_DAILY,), now) is PUSH_DAILY


async def test_of_two_concurrent_reservations_for_the_last_slot_exactly_one_wins(
    redis_url: str,
) -> None:
    # Separate clients: the two scripts really race on the server.
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    stores = [ContactStore(c, "emma:contacts", 3600) for c in clients]
    try:
        for round_ in range(20):
            subject = pseudonymise(f"c-race-{round_}")
            results = await asyncio.gather(
                *(
                    s.reserve(subject, f"e{i}", Channel.PUSH, JUNE_MORNING, JUNE_MORNING, POLICY)
                    for i, s in enumerate(stores)
                )
            )
            assert sorted(results) == [False, True]
    finally:
        for c in clients:
            await c.aclose()


def _gate(store: ContactStore) -> ContactGate:
    return ContactGate(store)


async def test_a_lost_race_drops_the_channel_and_draws_again(store: ContactStore) -> None:
    the_offer = offer()
    actions = [Action(the_offer, Channel.PUSH), Action(the_offer, Channel.IN_APP)]
    only_push = ContactPolicy(caps=(PUSH_DAILY,))
    # Another replica took the last push slot after this decision read the counters.
    now = JUNE_MORNING
    assert await store.reserve(SUBJECT, "other", Channel.PUSH, now, now, only_push)
    held = await _gate(store).hold(
        "e1", request(), SUBJECT, only_push, actions, [0.9, 0.1], 0, timeout_s=1.0
    )
    assert held.index == 1
    assert held.pmf == [0.0, 1.0]
    assert held.removed == {"frequency_cap": 1}
    assert not held.degraded
    # In-app is not capped here, so nothing was recorded for it.
    history = await store.history(SUBJECT, only_push, now)
    assert [c.channel for c in history.contacts] == [Channel.PUSH]


async def test_nothing_left_after_a_lost_race(store: ContactStore) -> None:
    now = JUNE_MORNING
    assert await store.reserve(SUBJECT, "other", Channel.PUSH, now, now, POLICY)
    actions = [Action(offer(), Channel.PUSH)]
    held = await _gate(store).hold("e1", request(), SUBJECT, POLICY, actions, [1.0], 0, 1.0)
    assert held.index is None


async def test_counters_down_drop_every_capped_channel(dead_addr: str) -> None:
    host, port = dead_addr.split(":")
    broken = aioredis.Redis(host=host, port=int(port), socket_connect_timeout=0.2)
    try:
        gate = ContactGate(ContactStore(broken, "emma:contacts", 3600))
        the_offer = offer()
        actions = [
            Action(the_offer, Channel.PUSH),
            Action(the_offer, Channel.EMAIL),
            Action(the_offer, Channel.IN_APP),
        ]
        only_push_capped = ContactPolicy(caps=(PUSH_DAILY,))
        held = await gate.hold(
            "e1", request(), SUBJECT, only_push_capped, actions, [0.8, 0.1, 0.1], 0, 1.0
        )
        assert held.degraded
        assert held.removed == {"policy_unavailable": 1}
        assert held.index in {1, 2}
        with pytest.raises(Exception):  # noqa: B017 - any Redis failure
            await gate.history(SUBJECT, POLICY, request())
    finally:
        await broken.aclose()


async def test_deferred_decisions_count_at_activation(
    store: ContactStore, client: aioredis.Redis
) -> None:
    deferred = request(deferred_activation=True)
    actions = [Action(offer(), Channel.PUSH)]
    held = await _gate(store).hold("e1", deferred, SUBJECT, POLICY, actions, [1.0], 0, 1.0)
    assert held.index == 0
    # Nothing counted yet: the offer may never be shown.
    assert (await store.history(SUBJECT, POLICY, JUNE_MORNING)).contacts == ()
    shown = JUNE_MORNING + timedelta(minutes=5)
    assert await store.activated("e1", shown, POLICY)
    history = await store.history(SUBJECT, POLICY, shown)
    assert [(c.channel, c.at) for c in history.contacts] == [(Channel.PUSH, shown.timestamp())]
    # A second activation (or one of an unknown decision) counts nothing.
    assert not await store.activated("e1", shown, POLICY)
    assert not await store.activated("never-decided", shown, POLICY)
    assert len((await store.history(SUBJECT, POLICY, shown)).contacts) == 1


def test_counters_are_keyed_by_the_canonical_customer() -> None:
    gate = _gate(ContactStore(aioredis.Redis(), "emma:contacts", 3600))
    by_id = request(customer_value="c-anna")
    by_card = request(customer_kind=common_pb2.IDENTIFIER_KIND_LOYALTY_CARD, customer_value="1001")
    assert gate.guess(by_id) == pseudonymise("c-anna")
    first_guess = gate.guess(by_card)
    assert first_guess != pseudonymise("c-anna")
    anna = customer(customer_id="c-anna")
    assert gate.subject(by_card, anna) == pseudonymise("c-anna")
    # Learnt: the next decision for the card reads Anna's counters before her profile arrives.
    assert gate.guess(by_card) == pseudonymise("c-anna")
    # A card no profile knows is counted under the card's own pseudonym.
    stranger = request(customer_kind=common_pb2.IDENTIFIER_KIND_LOYALTY_CARD, customer_value="9")
    unknown = dataclasses.replace(anna, found=False, customer_id="")
    subject = gate.subject(stranger, unknown)
    assert subject == pseudonymise(f"{common_pb2.IDENTIFIER_KIND_LOYALTY_CARD}:9")


def test_redistribute_keeps_the_live_mass_or_follows_priorities() -> None:
    assert redistribute([0.5, 0.3, 0.2], [False, True, True], [0, 0, 0]) == pytest.approx(
        [0.0, 0.6, 0.4]
    )
    # A baseline's one-hot choice was dropped: the next priority takes over.
    assert redistribute([1.0, 0.0, 0.0], [False, True, True], [9, 1, 5]) == [0.0, 0.0, 1.0]
    assert redistribute([1.0], [False], [0]) is None
