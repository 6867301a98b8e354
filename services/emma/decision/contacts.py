"""Frequency caps in Redis: each customer's recent contacts, read in one round trip and
reserved atomically after the model's choice (or counted at Activate for deferred offers);
and the customer's decision-log salt, kept beside the contacts.

Layout (keys carry the customer's pseudonym only, never an identifier):
  <prefix>:{<pseudonym>}        sorted set  member `<channel>|<event id>`, score = epoch
                                            seconds of the (possibly scheduled) delivery;
                                            and `salt|<hex>` at score +inf: the salt of the
                                            customer's pseudonym in the decision log
  <prefix>:pending:<event id>   string      JSON {subject, channel, at} of a deferred decision,
                                            counted when Activate arrives
The hash tag is the pseudonym, so a customer's contacts live in one Redis Cluster slot.

The decision log names a customer by a keyed hash of their pseudonym and the random salt
(`salted_pseudonym`), never by something recomputable from the identifier alone: deleting
the contact record (`forget_customer`) deletes the salt, and past log entries can no longer
be linked to the customer; their next decision draws a new salt.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import cast

import redis.asyncio as redis

from emma.decision import eligibility as elig
from emma.decision.bandit import sample_index
from emma.decision.decision_log import EncodedDecision, LoggedDecision
from emma.decision.domain import Channel, CustomerView, DecideInput
from emma.decision.policy import Cap, Contact, ContactHistory, ContactPolicy
from emma.runtime.deadline import within
from emma.runtime.privacy import pseudonymise

log = logging.getLogger(__name__)

# IDENTIFIER_KIND_CUSTOMER_ID of emma.common.v1: such a reference is its own canonical id.
_CUSTOMER_ID_KIND = 1
_SUBJECT_CACHE = 10_000
# The salt member's prefix; its score (+inf) keeps it out of every window and every trim.
_SALT = "salt|"
# A record holding only a salt lives this long after the customer's last decision: past
# it the next decision draws a new salt, so log entries a long silence apart are unlinked.
SALT_TTL = timedelta(days=90)

# Reads the contacts after ARGV[1] (a ZRANGEBYSCORE bound) with the salt, adding ARGV[2] as
# the salt when there is none (of concurrent first decisions the first adds, all read it),
# and keeps the record between ARGV[3] / 2 and ARGV[3] ms (refreshed when half is gone, so
# most reads write nothing, not even to the AOF). Returns member, score, member, score, ...;
# the salt is the last pair (the only member at +inf).
_READ = """
local key = KEYS[1]
local entries = redis.call('ZRANGEBYSCORE', key, ARGV[1], '+inf', 'WITHSCORES')
local n = #entries
if n == 0 or string.sub(entries[n - 1], 1, 5) ~= 'salt|' then
  local salt = 'salt|' .. ARGV[2]
  redis.call('ZADD', key, 'inf', salt)
  entries[n + 1] = salt
  entries[n + 2] = 'inf'
end
if redis.call('PTTL', key) < tonumber(ARGV[3]) / 2 then redis.call('PEXPIRE', key, ARGV[3]) end
return entries
"""

# Checks every cap covering the channel and adds the contact only when all are under their
# limit, in one atomic step: of two concurrent decisions for the last slot exactly one wins.
# KEYS[1] the contact set. ARGV: member, score, trim-below score, ttl ms, number of caps,
# then per cap: window seconds, limit, ",channel,channel," (",," for every channel).
# With KEYS[2] (the decision stream) and KEYS[3] (the decision's marker), a recorded
# contact also writes the decision log in the same step; then ARGV goes on with
# EncodedDecision.script_args(): the stream's approximate maxlen, the marker, its ttl in
# seconds and the entry's fields.
# Returns 1 when the contact is (or already was) recorded, 0 when a cap is full.
_RESERVE = """
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[3])
local reserved = redis.call('ZSCORE', key, ARGV[1])
local caps_end = 5 + 3 * tonumber(ARGV[5])
if not reserved then
  local score = tonumber(ARGV[2])
  local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for i = 6, caps_end, 3 do
    local since = score - tonumber(ARGV[i])
    local limit = tonumber(ARGV[i + 1])
    local channels = ARGV[i + 2]
    local count = 0
    for j = 1, #entries, 2 do
      local channel = string.match(entries[j], '^[^|]*')
      if channel ~= 'salt' and tonumber(entries[j + 1]) > since and
         (channels == ',,' or string.find(channels, ',' .. channel .. ',', 1, true)) then
        count = count + 1
      end
    end
    if count >= limit then return 0 end
  end
  redis.call('ZADD', key, score, ARGV[1])
  if redis.call('PTTL', key) < tonumber(ARGV[4]) then redis.call('PEXPIRE', key, ARGV[4]) end
end
if #KEYS == 3 then
  local fields = {}
  for i = caps_end + 4, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[caps_end + 1], '*', unpack(fields))
  redis.call('SET', KEYS[3], ARGV[caps_end + 2], 'EX', ARGV[caps_end + 3])
end
return 1
"""


def salted_pseudonym(subject: str, salt: str | None) -> str:
    """The decision log's name for a customer: a keyed hash of their pseudonym and salt.

    Without a salt (the contact record could not be read) a one-off random salt is used:
    such an entry is linked to nobody, which errs on the side of the customer.
    """
    salt = salt if salt is not None else secrets.token_hex(16)
    return pseudonymise(f"{salt}|{subject}")


@dataclasses.dataclass(frozen=True)
class ContactRecord:
    """What a customer's contact record holds: counted contacts and the log salt."""

    history: ContactHistory
    salt: str


def contact_subjects(customer_id: str, identifiers: Iterable[str] = ()) -> list[str]:
    """Every pseudonym a customer's contact records may be kept under: the canonical id's,
    and each identifier's (`<kind number>:<value>`, as the profile stores them) for
    decisions made before the profile said whose the identifier is."""
    subjects = [pseudonymise(customer_id)] if customer_id else []
    subjects += [pseudonymise(identifier) for identifier in identifiers]
    return list(dict.fromkeys(subjects))


async def forget_customer(
    client: redis.Redis | redis.RedisCluster,
    prefix: str,
    customer_id: str,
    identifiers: Iterable[str] = (),
) -> int:
    """Erasure: deletes the customer's contact records, salts included; returns how many.

    `prefix` is EMMA_CONTACT_KEY_PREFIX, `customer_id` the canonical id, `identifiers`
    every identifier linked to it as `<kind number>:<value>` (emma.common.v1.IdentifierKind).
    Past decision-log entries then carry a pseudonym nobody can compute again; the
    frequency caps start from zero and the next decision draws a new salt. Idempotent.
    One DEL per key: the keys live in different Cluster slots.
    """
    deleted = 0
    for subject in contact_subjects(customer_id, identifiers):
        deleted += int(await client.delete(f"{prefix}:{{{subject}}}"))
    return deleted


class ContactStore:
    """The contact records of customers, keyed by pseudonym."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        pending_ttl_s: float,
        salt_ttl: timedelta = SALT_TTL,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.pending_ttl_s = pending_ttl_s
        self.salt_ttl_ms = math.ceil(salt_ttl.total_seconds() * 1000)
        self._read = client.register_script(_READ)
        self._reserve = client.register_script(_RESERVE)

    def key(self, subject: str) -> str:
        return f"{self.prefix}:{{{subject}}}"

    def _pending_key(self, event_id: str) -> str:
        return f"{self.prefix}:pending:{event_id}"

    async def record(self, subject: str, policy: ContactPolicy, now: datetime) -> ContactRecord:
        """One round trip: contacts within the policy's longest window before `now` (and any
        scheduled later), and the salt, created if the customer has none yet."""
        since = (now - policy.longest_window).timestamp()
        raw = cast(
            list[str | bytes],
            await self._read(
                keys=[self.key(subject)],
                args=[f"({since!r}", secrets.token_hex(16), self.salt_ttl_ms],
            ),
        )
        contacts = []
        salt = ""
        for i in range(0, len(raw), 2):
            member = raw[i]
            text = member.decode() if isinstance(member, bytes) else member
            channel, _, rest = text.partition("|")
            if channel in _CHANNELS:
                contacts.append(Contact(Channel(channel), float(raw[i + 1])))
            elif channel == "salt":
                salt = rest
        return ContactRecord(ContactHistory(tuple(contacts)), salt)

    async def history(self, subject: str, policy: ContactPolicy, now: datetime) -> ContactHistory:
        """Contacts within the policy's longest window before `now`, and any scheduled later."""
        return (await self.record(subject, policy, now)).history

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
            len(caps),
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
        log: EncodedDecision | None = None,
    ) -> bool:
        """Records the contact if every cap on its channel has room; False when one is full.

        With `log`, a recorded contact writes the decision-log entry in the same atomic
        step (one round trip), and a full cap writes nothing.
        """
        args = self._args(event_id, channel, at, now, policy, policy.caps_for(channel))
        keys = [self.key(subject)]
        if log is not None:
            keys += log.script_keys()
            args += log.script_args()
        return bool(await self._reserve(keys=keys, args=args))

    async def defer(
        self,
        subject: str,
        event_id: str,
        channel: Channel,
        at: datetime,
        log: EncodedDecision | None = None,
    ) -> None:
        """Remembers a deferred decision's contact, counted only if Activate arrives; with
        `log`, writes the decision-log entry in the same round trip."""
        record = {"subject": subject, "channel": channel.value, "at": at.timestamp()}
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(
                self._pending_key(event_id), json.dumps(record), ex=max(1, int(self.pending_ttl_s))
            )
            if log is not None:
                log.queue(pipe)
            await pipe.execute()

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
    # The decision-log entry written with the reservation (same round trip); None when
    # nothing was written, and the caller writes the log itself.
    logged: LoggedDecision | None = None


# The decision-log entry for a draw: (distribution, chosen index, removed so far) -> entry.
LogEntry = Callable[[list[float], int, collections.Counter[str]], LoggedDecision]
Encode = Callable[[LoggedDecision], EncodedDecision]


class ContactGate:
    """Frequency caps for the pipeline: whose counters, what they hold, and the reservation.

    With `encode` (DecisionStore.encode), the reservation of a capped contact and the
    decision-log write go to Redis as one step.
    """

    def __init__(self, store: ContactStore, encode: Encode | None = None) -> None:
        self.store = store
        self.encode = encode
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

    def subject(
        self, request: DecideInput, customer: CustomerView, guess: str | None = None
    ) -> str:
        """Whose counters they are: the pseudonym of the canonical id the profile resolved.

        `guess` is what `guess(request)` returned, saving a keyed hash when it was right.
        """
        if not customer.customer_id:
            return guess if guess is not None else self.guess(request)
        if (
            guess is not None
            and request.customer_kind == _CUSTOMER_ID_KIND
            and customer.customer_id == request.customer_value
        ):
            return guess
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

    async def record(
        self, subject: str, policy: ContactPolicy, request: DecideInput
    ) -> ContactRecord:
        """The customer's counted contacts and decision-log salt, in one round trip."""
        return await self.store.record(subject, policy, request.request_time)

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
        entry: LogEntry | None = None,
    ) -> Hold:
        """Reserves the chosen action's contact; when a concurrent decision took the last
        slot, drops that channel and draws again from what remains of the distribution.

        Deferred decisions only remember the contact, counted at Activate. With `entry`
        (and an encoder), the decision-log entry of the action finally held is written in
        the reservation's round trip, and returned in `Hold.logged`.
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
            logged = entry(pmf, index, removed) if entry and self.encode else None
            encoded = self.encode(logged) if logged is not None and self.encode else None
            try:
                if request.deferred_activation:
                    await within(
                        self.store.defer(subject, event_id, action.channel, at, encoded),
                        timeout_s,
                    )
                    return Hold(pmf, index, removed, degraded, logged)
                reserved = await within(
                    self.store.reserve(
                        subject, event_id, action.channel, at, request.request_time, policy, encoded
                    ),
                    timeout_s,
                )
            except Exception:  # the counters are down: nothing capped may be used
                degraded, reserved = True, False
            if reserved:
                return Hold(pmf, index, removed, degraded, logged)
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
