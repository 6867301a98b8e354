"""Frequency caps in Redis: each customer's recent contacts, read in one round trip and
reserved atomically after the model's choice (or counted at Activate for deferred offers).

Layout (keys carry the customer's pseudonym only, never an identifier):
  <prefix>:{<pseudonym>}        sorted set  member `<channel>|<event id>`, score = epoch
                                            seconds of the (possibly scheduled) delivery
  <prefix>:pending:<event id>   string      JSON {subject, channel, at} of a deferred decision,
                                            counted when Activate arrives
The hash tag is the pseudonym, so a customer's contacts live in one Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

import redis.asyncio as redis

from emma.decision import eligibility as elig
from emma.decision.bandit import sample_index
from emma.decision.domain import Channel, CustomerView, DecideInput
from emma.decision.policy import Cap, Contact, ContactHistory, ContactPolicy
from emma.runtime.privacy import pseudonymise

log = logging.getLogger(__name__)

# IDENTIFIER_KIND_CUSTOMER_ID of emma.common.v1: such a reference is its own canonical id.
_CUSTOMER_ID_KIND = 1
_SUBJECT_CACHE = 10_000

# Checks every cap covering the channel and adds the contact only when all are under their
# limit, in one atomic step: of two concurrent decisions for the last slot exactly one wins.
# KEYS[1] the contact set. ARGV: member, score, trim-below score, ttl ms, then per cap:
# window seconds, limit, ",channel,channel," (",," for every channel). Returns 1 when the
# contact is (or already was) recorded, 0 when a cap is full.
_RESERVE = """
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[3])
if redis.call('ZSCORE', key, ARGV[1]) then return 1 end
local score = tonumber(ARGV[2])
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
for i = 5, #ARGV, 3 do
  local since = score - tonumber(ARGV[i])
  local limit = tonumber(ARGV[i + 1])
  local channels = ARGV[i + 2]
  local count = 0
  for j = 1, #entries, 2 do
    local channel = string.match(entries[j], '^[^|]*')
    if tonumber(entries[j + 1]) > since and
       (channels == ',,' or string.find(channels, ',' .. channel .. ',', 1, true)) then
      count = count + 1
    end
  end
  if count >= limit then return 0 end
end
redis.call('ZADD', key, score, ARGV[1])
redis.call('PEXPIRE', key, ARGV[4])
return 1
"""


class ContactStore:
    """The contact records of customers, keyed by pseudonym."""

    def __init__(self, client: redis.Redis, prefix: str, pending_ttl_s: float) -> None:
        self.client = client
        self.prefix = prefix
        self.pending_ttl_s = pending_ttl_s
        self._reserve = client.register_script(_RESERVE)

    def key(self, subject: str) -> str:
        return f"{self.prefix}:{{{subject}}}"

    def _pending_key(self, event_id: str) -> str:
        return f"{self.prefix}:pending:{event_id}"

    async def history(self, subject: str, policy: ContactPolicy, now: datetime) -> ContactHistory:
        """Contacts within the policy's longest window before `now`, and any scheduled later."""
        since = (now - policy.longest_window).timestamp()
        raw = cast(
            list[tuple[bytes | str, float]],
            await self.client.zrangebyscore(
                self.key(subject), f"({since!r}", "+inf", withscores=True
            ),
        )
        contacts = []
        for member, score in raw:
            text = member.decode() if isinstance(member, bytes) else str(member)
            channel = text.partition("|")[0]
            if channel in _CHANNELS:
                contacts.append(Contact(Channel(channel), float(score)))
        return ContactHistory(tuple(contacts))

    def _args(
        self,
        event_id: str,
        channel: Channel,
        at: datetime,
        now: datetime,
        policy: ContactPolicy,
        caps: Sequence[Cap],
    ) -> list[str | float | int]:
        trim = (now - policy.longest_window).timestamp()
        ttl = policy.longest_window + policy.quiet_horizon + timedelta(hours=1)
        args: list[str | float | int] = [
            f"{channel.value}|{event_id}",
            repr(at.timestamp()),
            repr(trim),
            math.ceil(ttl.total_seconds() * 1000),
        ]
        for cap in caps:
            listed = ",".join(sorted(c.value for c in cap.channels))
            args += [repr(cap.window.total_seconds()), cap.limit, f",{listed},"]
        return args

    async def reserve(
        self,
        subject: str,
        event_id: str,
        channel: Channel,
        at: datetime,
        now: datetime,
        policy: ContactPolicy,
    ) -> bool:
        """Records the contact if every cap on its channel has room; False when one is full."""
        args = self._args(event_id, channel, at, now, policy, policy.caps_for(channel))
        return bool(await self._reserve(keys=[self.key(subject)], args=args))

    async def defer(self, subject: str, event_id: str, channel: Channel, at: datetime) -> None:
        """Remembers a deferred decision's contact, counted only if Activate arrives."""
        record = {"subject": subject, "channel": channel.value, "at": at.timestamp()}
        await self.client.set(
            self._pending_key(event_id), json.dumps(record), ex=max(1, int(self.pending_ttl_s))
        )

    async def activated(self, event_id: str, time: datetime, policy: ContactPolicy) -> bool:
        """Counts a deferred decision's contact when it was really shown; False if none waits.

        The contact is recorded even over the cap: it has happened. It counts at the
        activation or the scheduled send time, whichever is later.
        """
        raw = await self.client.getdel(self._pending_key(event_id))
        if raw is None:
            return False
        record = json.loads(raw)
        at = datetime.fromtimestamp(max(record["at"], time.timestamp()), tz=time.tzinfo)
        args = self._args(event_id, Channel(record["channel"]), at, time, policy, ())
        await self._reserve(keys=[self.key(record["subject"])], args=args)
        return True


_CHANNELS = frozenset(c.value for c in Channel)


@dataclasses.dataclass(frozen=True)
class Hold:
    """The outcome of reserving the chosen action's contact."""

    # The distribution after removing channels that could not be reserved (zeros there).
    pmf: list[float]
    # The action finally chosen, None when no action is left.
    index: int | None
    removed: collections.Counter[str]
    # The counters failed: the capped channels were dropped.
    degraded: bool


class ContactGate:
    """Frequency caps for the pipeline: whose counters, what they hold, and the reservation."""

    def __init__(self, store: ContactStore) -> None:
        self.store = store
        # pseudonym of `kind:value` -> pseudonym of the canonical id, learnt from profiles, so
        # the counters of a loyalty card can be read before the profile says whose card it is.
        self._subjects: collections.OrderedDict[str, str] = collections.OrderedDict()

    @staticmethod
    def _reference(request: DecideInput) -> str:
        return pseudonymise(f"{request.customer_kind}:{request.customer_value}")

    def guess(self, request: DecideInput) -> str:
        """Whose counters to read before the profile arrives."""
        if request.customer_kind == _CUSTOMER_ID_KIND:
            return pseudonymise(request.customer_value)
        reference = self._reference(request)
        return self._subjects.get(reference, reference)

    def subject(self, request: DecideInput, customer: CustomerView) -> str:
        """Whose counters they are: the pseudonym of the canonical id the profile resolved."""
        if not customer.customer_id:
            return self.guess(request)
        subject = pseudonymise(customer.customer_id)
        if request.customer_kind != _CUSTOMER_ID_KIND:
            reference = self._reference(request)
            self._subjects[reference] = subject
            self._subjects.move_to_end(reference)
            while len(self._subjects) > _SUBJECT_CACHE:
                self._subjects.popitem(last=False)
        return subject

    async def activated(self, event_id: str, time: datetime, policy: ContactPolicy) -> None:
        """Counts a deferred decision's contact at its activation; a Redis failure is logged,
        not raised: the activation itself is recorded, and a retry would not count again."""
        try:
            await self.store.activated(event_id, time, policy)
        except redis.RedisError as error:
            log.warning("deferred contact not counted", extra={"error": type(error).__name__})

    async def history(
        self, subject: str, policy: ContactPolicy, request: DecideInput
    ) -> ContactHistory:
        return await self.store.history(subject, policy, request.request_time)

    async def hold(
        self,
        event_id: str,
        request: DecideInput,
        subject: str,
        policy: ContactPolicy,
        actions: Sequence[elig.Action],
        pmf: Sequence[float],
        index: int,
        timeout_s: float,
    ) -> Hold:
        """Reserves the chosen action's contact; when a concurrent decision took the last
        slot, drops that channel and draws again from what remains of the distribution.

        Deferred decisions only remember the contact, counted at Activate.
        """
        pmf = list(pmf)
        alive = [True] * len(actions)
        removed: collections.Counter[str] = collections.Counter()
        degraded = False
        attempt = 0
        while True:
            action = actions[index]
            if not policy.capped(action.channel):
                return Hold(pmf, index, removed, degraded)
            at = action.send_at or request.request_time
            try:
                if request.deferred_activation:
                    await asyncio.wait_for(
                        self.store.defer(subject, event_id, action.channel, at), timeout_s
                    )
                    return Hold(pmf, index, removed, degraded)
                reserved = await asyncio.wait_for(
                    self.store.reserve(
                        subject, event_id, action.channel, at, request.request_time, policy
                    ),
                    timeout_s,
                )
            except Exception:  # the counters are down: nothing capped may be used
                degraded, reserved = True, False
            if reserved:
                return Hold(pmf, index, removed, degraded)
            reason = elig.POLICY_UNAVAILABLE if degraded else elig.FREQUENCY_CAP
            for i, other in enumerate(actions):
                drop = policy.capped(other.channel) if degraded else other.channel is action.channel
                if alive[i] and drop:
                    alive[i] = False
                    removed[reason] += 1
            attempt += 1
            next_pmf = redistribute(pmf, alive, [a.offer.priority for a in actions])
            if next_pmf is None:
                return Hold([0.0] * len(pmf), None, removed, degraded)
            pmf = next_pmf
            index = sample_index(pmf, f"{event_id}/{attempt}")


def redistribute(
    pmf: Sequence[float], alive: Sequence[bool], priorities: Sequence[int]
) -> list[float] | None:
    """The distribution restricted to the live actions; None when none is left.

    When the live actions had no mass (a baseline's one-hot choice was dropped), the
    highest-priority live action takes it all, as the baseline would have chosen.
    """
    if not any(alive):
        return None
    mass = sum(p for p, keep in zip(pmf, alive, strict=True) if keep)
    if mass <= 0:
        best = max((i for i, keep in enumerate(alive) if keep), key=lambda i: priorities[i])
        return [1.0 if i == best else 0.0 for i in range(len(pmf))]
    return [p / mass if keep else 0.0 for p, keep in zip(pmf, alive, strict=True)]
