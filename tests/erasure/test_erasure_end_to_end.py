"""Erasure everywhere: EraseCustomer over gRPC removes the profile, wallet, trigger state,
outbound actions and contact records; a Decide afterwards starts fresh; an erasure a
decision replica took and did not finish is claimed by another."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from emma.common.v1 import common_pb2
from emma.decision.config import DecisionConfig
from emma.decision.erasure import ErasureConsumer
from emma.decision.v1 import decision_pb2
from emma.profile.outbox import Erasure
from emma.profile.v1 import profile_pb2
from emma.runtime.privacy import pseudonymise
from tests.triggers.conftest import FRIDAY_NOON, Moments, customer, event, minutes
from tests.triggers.test_moments import ping

from .conftest import MeshFactory

CONTACTS = DecisionConfig().contact_key_prefix
STREAM = DecisionConfig().profile_events_stream
GROUP = DecisionConfig().erasure_group


async def contact_keys(moments: Moments) -> list[bytes]:
    return [key async for key in moments.redis.scan_iter(f"{CONTACTS}:{{*")]


async def erasure_entries(moments: Moments) -> list[Any]:
    entries: Any = await moments.redis.xrange(STREAM)
    return [entry for entry in entries if Erasure.of_entry(entry[1]) is not None]


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 20.0) -> None:
    """Waits for a background consumer (not a speed test: the bound only stops a hang)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.05)


async def pushed_and_held(moments: Moments, anna: common_pb2.CustomerRef) -> dict[str, str]:
    """A geofence push (a contact on a capped channel) whose coupon lands in the wallet."""
    await moments.consent(anna)
    await moments.record(ping(anna, FRIDAY_NOON - minutes(1)))
    await moments.step()
    [action] = await moments.outbound()
    delivered = profile_pb2.OfferResponse(
        kind=profile_pb2.OFFER_RESPONSE_KIND_SHOWN,
        offer_id=action["offer_id"],
        decision_event_id=action["event_id"],
        channel=common_pb2.CHANNEL_PUSH,
    )
    await moments.record(event(anna, datetime.now(UTC), offer_response=delivered))
    assert await contact_keys(moments) != []
    assert [key async for key in moments.redis.scan_iter("*:w")] != []
    return action


async def test_erasure_reaches_every_store_and_a_decide_starts_fresh(mesh: MeshFactory) -> None:
    async with mesh() as moments:
        anna = customer()
        await pushed_and_held(moments, anna)
        found = await moments.profile.GetProfile(profile_pb2.GetProfileRequest(customer=anna))
        subject = pseudonymise(found.profile.customer_id)

        erased = await moments.profile.EraseCustomer(
            profile_pb2.EraseCustomerRequest(customer=anna)
        )
        assert erased.erased
        await moments.step()  # the trigger engine; the decision replica consumes by itself

        async def forgotten() -> bool:
            return await contact_keys(moments) == []

        await eventually(forgotten)
        assert [key async for key in moments.redis.scan_iter("*:w")] == []
        assert await moments.outbound() == []
        prefix = moments.engine.config.state_prefix
        left = [key.decode() async for key in moments.redis.scan_iter(f"{prefix}:*{subject}*")]
        assert left == []

        # Both groups done: the entry naming her identifiers is deleted.
        async def released() -> bool:
            return await erasure_entries(moments) == []

        await eventually(released)

        request = decision_pb2.DecideRequest(
            customer=anna,
            touchpoint=common_pb2.TOUCHPOINT_APP,
            allowed_channels=[common_pb2.CHANNEL_PUSH, common_pb2.CHANNEL_IN_APP],
        )
        request.request_time.FromDatetime(FRIDAY_NOON)
        fresh = await moments.decision.Decide(request)
        assert list(fresh.open_offers) == []
        # No consent any more: the erased ledger does not allow a push.
        assert fresh.channel != common_pb2.CHANNEL_PUSH


async def test_an_unfinished_erasure_is_claimed_by_another_replica(
    mesh: MeshFactory, redis_url: str
) -> None:
    async with mesh(consume_erasures=False) as moments:
        anna = customer()
        await pushed_and_held(moments, anna)
        client = aioredis.Redis.from_url(redis_url, decode_responses=False)
        try:
            first = ErasureConsumer(
                client, stream=STREAM, group=GROUP, key_prefix=CONTACTS, claim_idle_s=0.001
            )
            await first.ensure_group()
            await moments.profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=anna))
            # A replica takes every entry and dies before finishing any.
            await client.xreadgroup(GROUP, "crashed", {STREAM: ">"})
            assert (await client.xpending(STREAM, GROUP))["pending"] >= 1
            assert await contact_keys(moments) != []

            successor = ErasureConsumer(
                client,
                stream=STREAM,
                group=GROUP,
                key_prefix=CONTACTS,
                claim_idle_s=0.001,
                consumer="successor",
            )
            await asyncio.sleep(0.01)
            await successor.step(block_ms=None)

            assert successor.stats["erased"] == 1
            assert await contact_keys(moments) == []
            assert (await client.xpending(STREAM, GROUP))["pending"] == 0
            # The trigger engine has not read it yet: the entry waits for its group.
            assert len(await erasure_entries(moments)) == 1
            await moments.step()
            assert await erasure_entries(moments) == []
            # A redelivered or repeated erasure is harmless.
            await moments.profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=anna))
            await successor.step(block_ms=None)
            assert successor.stats["erased"] == 2
        finally:
            await client.aclose()
