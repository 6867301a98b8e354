"""Erasure in the trigger engine: EraseCustomer through the profile service, the engine
stepped, and nothing of the customer is left in its state, timers or outbound stream."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2
from emma.profile.outbox import EVENTS_FIELD, RECORDED_FIELD, Erasure
from emma.profile.v1 import profile_pb2
from emma.runtime.privacy import pseudonymise

from .conftest import FRIDAY_NOON, Moments, customer, event, minutes
from .test_moments import ping, purchase


async def trigger_keys(moments: Moments) -> list[str]:
    """The engine's keys, apart from processed event ids (no customer in them)."""
    prefix = moments.engine.config.state_prefix
    keys = [key.decode() async for key in moments.redis.scan_iter(f"{prefix}:*")]
    return sorted(key for key in keys if not key.startswith(f"{prefix}:ev:"))


def look(ref: common_pb2.CustomerRef, when: object) -> profile_pb2.Event:
    interaction = profile_pb2.Interaction(
        kind=profile_pb2.INTERACTION_KIND_VIEW, product_id="emmentaler", category="cheese"
    )
    return event(ref, when, interaction=interaction)  # type: ignore[arg-type]


async def fill_state(moments: Moments, ref: common_pb2.CustomerRef) -> None:
    """A geofence push, a cool-down, replenishment history and timers for the customer."""
    now = FRIDAY_NOON - minutes(1)
    await moments.consent(ref)
    await moments.record(ping(ref, now))
    await moments.step()
    start = now - timedelta(days=28)
    coffee = [
        purchase(ref, start + timedelta(days=14 * i), "filter_coffee", "coffee") for i in range(3)
    ]
    unhappy = profile_pb2.SupportContact(sentiment=-0.9, topic="x")
    await moments.record(*coffee, look(ref, now), event(ref, now, support_contact=unhappy))
    await moments.step()


async def canonical_pseudonym(moments: Moments, ref: common_pb2.CustomerRef) -> str:
    found = await moments.profile.GetProfile(profile_pb2.GetProfileRequest(customer=ref))
    return pseudonymise(found.profile.customer_id)


def of(keys: list[str], *pseudonyms: str) -> list[str]:
    return [key for key in keys if any(p in key for p in pseudonyms)]


async def test_erasure_removes_state_timers_and_outbound_entries(moments: Moments) -> None:
    anna, ben = customer(), customer("ben")
    await fill_state(moments, anna)
    await fill_state(moments, ben)
    anna_names = (pseudonymise("3:anna"), await canonical_pseudonym(moments, anna))
    ben_names = (pseudonymise("3:ben"), await canonical_pseudonym(moments, ben))
    kept = await trigger_keys(moments)
    outbound = await moments.outbound()
    assert {action["recipient"] for action in outbound} == {"app_user_id:anna", "app_user_id:ben"}
    # Under the identifier: replenishment history, timer index; under the canonical id:
    # cool-down, dedup, firing count, outbound index.
    kinds = {key.split(":")[2] for key in of(kept, *anna_names)}
    assert kinds == {"rep", "tk", "cool", "dedup", "count", "out"}
    prefix = moments.engine.config.state_prefix
    timers = await moments.redis.zcard(f"{prefix}:due")

    await moments.profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=anna))
    await moments.step()

    assert moments.engine.stats["erased"] == 1
    left = await trigger_keys(moments)
    assert {key.split(":")[2] for key in of(left, *anna_names)} == {"erased"}
    assert of(left, *ben_names) == of(kept, *ben_names)
    assert {action["recipient"] for action in await moments.outbound()} == {"app_user_id:ben"}
    assert await moments.redis.zcard(f"{prefix}:due") == timers // 2
    bodies = await moments.redis.hvals(f"{prefix}:timer")
    assert bodies and not any(b"anna" in body for body in bodies)
    assert all(
        anna_names[0] not in member.decode()
        for member in await moments.redis.hkeys(f"{prefix}:timer")
    )


async def test_events_recorded_before_an_erasure_bring_nothing_back(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    await moments.record(look(anna, FRIDAY_NOON - minutes(1)))
    await moments.profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=anna))
    # Read before the engine runs: once every group is done with it, the entry is deleted.
    [erased_at] = [
        erasure
        for _, fields in await moments.redis.xrange(moments.engine.config.events_stream)
        if (erasure := Erasure.of_entry(fields)) is not None
    ]
    await moments.step()
    prefix = moments.engine.config.state_prefix
    assert await moments.redis.zcard(f"{prefix}:due") == 0
    late = profile_pb2.RecordEventsRequest(events=[look(anna, FRIDAY_NOON - minutes(2))])
    await moments.redis.xadd(
        moments.engine.config.events_stream,
        {EVENTS_FIELD: late.SerializeToString(), RECORDED_FIELD: erased_at.recorded_ms - 1},
    )
    await moments.step()
    assert moments.engine.stats["skipped.erased"] == 1
    assert await moments.redis.zcard(f"{prefix}:due") == 0
    # Recorded after the erasure, the same identifier is a new customer and counts again.
    await moments.record(look(anna, FRIDAY_NOON))
    await moments.step()
    assert await moments.redis.zcard(f"{prefix}:due") == 1


async def erase_now(moments: Moments, ref: common_pb2.CustomerRef) -> None:
    """Erases the customer and has the engine process the erasure at once, as another
    replica would while this one is busy with the customer's events."""
    await moments.profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=ref))
    entries = await moments.redis.xrange(moments.engine.config.events_stream)
    [erased] = [e for _, fields in entries if (e := Erasure.of_entry(fields)) is not None]
    await moments.engine.erase(erased)


async def test_an_erasure_while_a_firing_decides_publishes_nothing(
    moments: Moments, monkeypatch: pytest.MonkeyPatch
) -> None:
    anna = customer()
    await moments.consent(anna)
    decide = moments.engine._decide

    async def erased_while_deciding(*args: Any) -> decision_pb2.DecideResponse:
        response = await decide(*args)
        await erase_now(moments, anna)
        return response

    monkeypatch.setattr(moments.engine, "_decide", erased_while_deciding)
    await moments.record(ping(anna, FRIDAY_NOON - minutes(1)))
    await moments.step()

    assert await moments.outbound() == []
    assert moments.engine.stats["erased"] == 1
    assert moments.engine.stats["skipped.erased"] == 1
    assert moments.engine.stats["fired"] == 0
    # Nothing under the customer's pseudonyms but the tombstones.
    assert {key.split(":")[2] for key in await trigger_keys(moments)} == {"erased"}


async def test_an_erasure_while_events_are_handled_leaves_no_timer_nor_history(
    moments: Moments, monkeypatch: pytest.MonkeyPatch
) -> None:
    anna = customer()
    await moments.consent(anna)
    handle_event = moments.engine.handle_event
    erased: list[bool] = []

    async def erased_first(event: profile_pb2.Event, recorded: datetime) -> None:
        # The batch passed its tombstone check before the erasure was processed.
        if not erased:
            await erase_now(moments, anna)
            erased.append(True)
        await handle_event(event, recorded)

    monkeypatch.setattr(moments.engine, "handle_event", erased_first)
    now = FRIDAY_NOON - minutes(1)
    coffee = [
        purchase(anna, now - timedelta(days=28 - 14 * i), "filter_coffee", "coffee")
        for i in range(3)
    ]
    await moments.record(look(anna, now), *coffee)
    await moments.step()

    prefix = moments.engine.config.state_prefix
    assert await moments.redis.zcard(f"{prefix}:due") == 0
    assert await moments.redis.hlen(f"{prefix}:timer") == 0
    # Not the view's timer, nor the purchases' replenishment histories.
    assert {key.split(":")[2] for key in await trigger_keys(moments)} == {"erased"}
    assert moments.engine.stats["skipped.erased"] == 4
    assert moments.engine.stats["scheduled"] == 0
