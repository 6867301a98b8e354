"""The offer wallet: offers delivered to a customer, open until redeemed or expired.

Layout: one hash per customer in the customer's hash-tag slot (keys.py), so it lives on
the node of the profile it belongs to:
  {<prefix>:c:<cid>}:w   field = the decision's event id,
                         value = "<state>|<offer id>|<channel>|<delivered>|<expires>|<closed>"
                         (times in epoch seconds, 0 for none; state o open, r redeemed)

An offer response SHOWN that names its decision opens an entry; REDEEMED closes it. Both
are idempotent and commute: a redemption seen before its delivery leaves a closed entry
that the late delivery does not reopen, and a replayed delivery never reopens a redeemed
offer. Entries are pruned a grace period after they expired or closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from emma.profile.keys import customer_keys, home_id
from emma.profile.model import CustomerRef, IdentifierKind
from emma.profile.v1 import profile_pb2
from emma.runtime.redis_client import RedisClient

T = TypeVar("T")

OPEN, REDEEMED = "o", "r"
# How long a closed or expired entry is kept: a late, replayed delivery must still find
# the closed entry rather than open a new one.
CLOSED_GRACE = timedelta(days=7)

# KEYS[1] the wallet hash. ARGV[1] now, ARGV[2] grace seconds, ARGV[3] JSON list of ops
# [op, event id, offer id, channel, time, expires]. Applies the ops, prunes entries past
# their grace, and keeps the key alive until the last entry's grace ends.
_APPLY = """
local key, now, grace = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local function fields(value)
  local out = {}
  for part in string.gmatch(value .. '|', '([^|]*)|') do out[#out + 1] = part end
  return out
end
local function entry(...) return table.concat({...}, '|') end
for _, op in ipairs(cjson.decode(ARGV[3])) do
  local kind, event, offer, channel, t, expires = op[1], op[2], op[3], op[4], op[5], op[6]
  local old = redis.call('HGET', key, event)
  if kind == 'open' then
    if not old then
      redis.call('HSET', key, event, entry('o', offer, channel, t, expires, 0))
    end
  elseif kind == 'redeem' then
    if not old then
      redis.call('HSET', key, event, entry('r', offer, channel, 0, 0, t))
    else
      local f = fields(old)
      if f[1] == 'o' then
        redis.call('HSET', key, event, entry('r', f[2], f[3], f[4], f[5], t))
      end
    end
  end
end
local flat = redis.call('HGETALL', key)
local last = 0
for i = 1, #flat, 2 do
  local f = fields(flat[i + 1])
  local ends = math.max(tonumber(f[5]) or 0, tonumber(f[6]) or 0)
  if ends + grace < now then
    redis.call('HDEL', key, flat[i])
  elseif ends > last then
    last = ends
  end
end
if last > 0 then redis.call('EXPIREAT', key, math.floor(last + grace) + 1) end
return 1
"""


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


def wallet_key(prefix: str, customer_id: str) -> str:
    return customer_keys(prefix, customer_id).tag + ":w"


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
        self._apply = client.register_script(_APPLY)

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
        args = [int(now.timestamp()), int(CLOSED_GRACE.total_seconds())]
        for customer_id, customer_ops in per_customer.items():
            key = self.key(customer_id)
            await self._apply(keys=[key], args=[*args, json.dumps(customer_ops)])
        return len(ops)

    async def entries(self, customer_id: str) -> list[Entry]:
        raw = cast(dict[str, str], await self._client.hgetall(self.key(customer_id)))
        parsed = (Entry.parse(field, value) for field, value in raw.items())
        return [entry for entry in parsed if entry is not None]

    async def open_offers(self, customer_id: str, now: datetime) -> list[profile_pb2.WalletOffer]:
        """The customer's open offers, soonest to expire first."""
        entries = [e for e in await self.entries(customer_id) if e.is_open(now)]
        return [e.proto() for e in sorted(entries, key=lambda e: (e.expires, e.event_id))]

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
