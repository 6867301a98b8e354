"""The offer wallet: offers delivered to a customer, open until redeemed or expired.

Layout: one hash per customer in the customer's hash-tag slot (keys.py), so it lives on
the node of the profile it belongs to (lua/common.lua wallet_apply writes it):
  {<prefix>:c:<cid>}:w   field = the decision's event id,
                         value = "<state>|<offer id>|<channel>|<delivered>|<expires>|<closed>"
                         (times in epoch seconds, 0 for none; state o open, r redeemed)

An offer response SHOWN that names its decision opens an entry; REDEEMED closes it. Both
are idempotent and commute (either order leaves the same entry): a redemption seen before
its delivery leaves a closed entry that the late delivery completes but does not reopen,
and a replayed delivery never reopens a redeemed offer. Entries are pruned a grace period
after they expired or closed.

The wallet belongs to the profile: a merge moves the loser's entries to the survivor as the
deliveries and redemptions they record (`merge_ops`, lua/absorb.lua), and a write that meets
a redirected or frozen profile follows it to where the wallet went.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from emma.profile.keys import customer_keys, home_id
from emma.profile.model import CustomerRef, IdentifierKind
from emma.profile.scripts import ScriptRunner
from emma.profile.v1 import profile_pb2
from emma.runtime.errors import Aborted
from emma.runtime.redis_client import RedisClient

T = TypeVar("T")

OPEN, REDEEMED = "o", "r"
# How long a closed or expired entry is kept: a late, replayed delivery must still find
# the closed entry rather than open a new one.
CLOSED_GRACE = timedelta(days=7)

# Hops through redirects and merges a write follows before the caller is asked to retry.
_HOPS = 6


@dataclasses.dataclass(frozen=True)
class Entry:
    """One wallet entry, parsed."""

    event_id: str
    state: str
    offer_id: str
    channel: int
    delivered: float
    expires: float
    closed: float

    @staticmethod
    def parse(event_id: str, value: str) -> Entry | None:
        parts = value.split("|")
        if len(parts) != 6:
            return None
        try:
            return Entry(
                event_id,
                parts[0],
                parts[1],
                int(parts[2] or 0),
                float(parts[3] or 0),
                float(parts[4] or 0),
                float(parts[5] or 0),
            )
        except ValueError:
            return None

    def ops(self) -> list[list[Any]]:
        """The wallet ops that recreate this entry in another wallet (a merge): its delivery,
        if one was seen, then its redemption."""
        ops: list[list[Any]] = []
        if self.state == OPEN or self.delivered or self.expires:
            delivery = [int(self.delivered), int(self.expires)]
            ops.append(["open", self.event_id, self.offer_id, self.channel, *delivery])
        if self.state == REDEEMED:
            closed = int(self.closed)
            ops.append(["redeem", self.event_id, self.offer_id, self.channel, closed, closed])
        return ops

    def is_open(self, now: datetime) -> bool:
        return self.state == OPEN and self.expires > now.timestamp()

    def proto(self) -> profile_pb2.WalletOffer:
        offer = profile_pb2.WalletOffer(
            offer_id=self.offer_id,
            event_id=self.event_id,
            channel=self.channel,  # type: ignore[arg-type]
            state=(
                profile_pb2.WALLET_OFFER_STATE_OPEN
                if self.state == OPEN
                else profile_pb2.WALLET_OFFER_STATE_REDEEMED
            ),
        )
        offer.delivered_at.FromDatetime(datetime.fromtimestamp(self.delivered, UTC))
        offer.expires_at.FromDatetime(datetime.fromtimestamp(self.expires, UTC))
        return offer


def parsed_entries(held: Mapping[str, str]) -> list[Entry]:
    """The entries of a wallet hash as read; malformed ones left out."""
    parsed = (Entry.parse(field, value) for field, value in held.items())
    return [entry for entry in parsed if entry is not None]


def open_entries(held: Mapping[str, str], now: datetime) -> list[Entry]:
    """The open entries of a wallet hash as read, soonest to expire first."""
    entries = [entry for entry in parsed_entries(held) if entry.is_open(now)]
    return sorted(entries, key=lambda entry: (entry.expires, entry.event_id))


def wallet_key(prefix: str, customer_id: str) -> str:
    return customer_keys(prefix, customer_id).tag + ":w"


def merge_ops(held: Mapping[str, str]) -> list[list[Any]]:
    """A wallet hash as stored, as ops that apply it to another wallet: applied there, the
    entries combine as if both had been recorded under one customer (a redeemed entry stays
    redeemed, an entry past its grace is pruned, not revived)."""
    entries = sorted(parsed_entries(held), key=lambda entry: entry.event_id)
    return [op for entry in entries for op in entry.ops()]


def _ops(messages: Sequence[profile_pb2.Event], now: datetime, lifetime: timedelta) -> list[Any]:
    """[customer ref, op] of every event that opens or closes a wallet entry."""
    ops = []
    for event in messages:
        if event.WhichOneof("payload") != "offer_response":
            continue
        response = event.offer_response
        if not response.decision_event_id:
            continue
        when = event.time.ToDatetime(tzinfo=UTC) if event.HasField("time") else now
        if response.kind == profile_pb2.OFFER_RESPONSE_KIND_SHOWN:
            expires = (
                response.expires_at.ToDatetime(tzinfo=UTC)
                if response.HasField("expires_at")
                else when + lifetime
            )
            op = "open"
        elif response.kind == profile_pb2.OFFER_RESPONSE_KIND_REDEEMED:
            expires, op = when, "redeem"
        else:
            continue
        ref = CustomerRef(IdentifierKind(event.customer.kind), event.customer.value)
        ops.append(
            (
                ref,
                [
                    op,
                    response.decision_event_id,
                    response.offer_id,
                    int(response.channel),
                    int(when.timestamp()),
                    int(expires.timestamp()),
                ],
            )
        )
    return ops


class Wallet:
    """Opens, closes and reads the wallet entries of customers (lua/erase.lua erases them)."""

    def __init__(self, client: RedisClient, prefix: str, lifetime: timedelta) -> None:
        self._client = client
        self._prefix = prefix
        self._lifetime = lifetime
        self._runner = ScriptRunner(client)

    async def apply(
        self,
        messages: Sequence[profile_pb2.Event],
        now: datetime,
        canonical: Any,
    ) -> int:
        """Applies the batch's deliveries and redemptions; `canonical(ref)` resolves the
        customer id a reference belongs to (only called when the batch has such events)."""
        ops = _ops(messages, now, self._lifetime)
        if not ops:
            return 0
        per_customer: dict[str, list[Any]] = {}
        for ref, op in ops:
            customer_id = await canonical(ref)
            if customer_id:
                per_customer.setdefault(customer_id, []).append(op)
        args = [str(int(now.timestamp())), str(int(CLOSED_GRACE.total_seconds()))]
        for customer_id, customer_ops in per_customer.items():
            await self._apply(customer_id, [*args, json.dumps(customer_ops)], canonical)
        return len(ops)

    async def _apply(self, customer_id: str, args: Sequence[str], canonical: Any) -> None:
        """Writes to the wallet of the profile `customer_id` leads to: a profile merged or
        being merged since it was resolved took its wallet with it, so the write follows
        (resolving again completes a merge in progress); no profile, no write."""
        for _ in range(_HOPS):
            keys = customer_keys(self._prefix, customer_id).script_keys()
            reply = await self._runner.call("wallet", keys, args)
            if reply[0] in ("OK", "NONE"):
                return
            customer_id = await canonical(CustomerRef(IdentifierKind.CUSTOMER_ID, customer_id))
            if not customer_id:
                return
        raise Aborted("events: the customer's profile kept changing, retry")

    async def _held(self, customer_id: str) -> dict[str, str]:
        return cast(dict[str, str], await self._client.hgetall(self.key(customer_id)))

    async def entries(self, customer_id: str) -> list[Entry]:
        return parsed_entries(await self._held(customer_id))

    async def open_offers(self, customer_id: str, now: datetime) -> list[profile_pb2.WalletOffer]:
        """The customer's open offers, soonest to expire first."""
        return [entry.proto() for entry in open_entries(await self._held(customer_id), now)]

    async def with_profile(
        self, ref: CustomerRef, read: Awaitable[T], customer_id_of: Any, now: datetime
    ) -> tuple[T, list[profile_pb2.WalletOffer]]:
        """The profile read and its wallet, read together under a guess of whose it is (the
        identifier's own record, right unless it was linked into another profile); read
        again once the profile named its canonical id, if the guess was wrong."""
        guess = home_id(ref)
        profile, offers = await asyncio.gather(read, self.open_offers(guess, now))
        customer_id = customer_id_of(profile)
        if customer_id and customer_id != guess:
            offers = await self.open_offers(customer_id, now)
        return profile, offers

    def key(self, customer_id: str) -> str:
        return wallet_key(self._prefix, customer_id)

    async def export(self, customer_id: str) -> dict[str, str]:
        return cast(dict[str, str], await self._client.hgetall(self.key(customer_id)))
