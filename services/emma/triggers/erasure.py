"""Erasure in the trigger engine: which state keys belong to an erased customer, and their removal.

The engine keys its state by pseudonyms: of the canonical id (`subject`: dedup, firing
counts, cool-down, the outbound index) and of each identifier as events name it
(`<kind number>:<value>`: replenishment histories, timers). An erasure entry names the
canonical id and every identifier, so every key can be computed, except the timers and
outbound entries, which are found through per-customer indexes kept when they are written.
Dedup and count keys are per window (per moment and year for yearly moments): the windows
whose keys may still exist are computed from the rule windows, the staleness bound and the
keys' TTLs, so nothing is scanned.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

import redis.asyncio as redis

from emma.profile.model import IdentifierKind
from emma.profile.outbox import Erasure
from emma.runtime.privacy import pseudonymise
from emma.triggers.rules import ANNIVERSARIES, Rule, Rules

# How far in the future an event may be dated (the profile service refuses more).
_FUTURE = timedelta(days=1)
# How long an outbound index and a timer index outlive their latest entry.
OUTBOUND_INDEX_TTL_S = int(timedelta(days=400).total_seconds())
TIMER_INDEX_SLACK = timedelta(days=1)
# A yearly moment's dedup key lives at least this long (twice the rule's window when longer):
# past the end of its day in any time zone, when a late event could fire it again.
YEAR_DEDUP_MIN_S = int(timedelta(days=2).total_seconds())


def year_window(year: int, moment: str = "") -> str:
    """The dedup window of a yearly moment: its year and which moment (the life event).
    Without a moment it is the older window, one per year for all of a rule's moments."""
    return f"y{year}-{moment}" if moment else f"y{year}"


def year_dedup_s(rule: Rule) -> int:
    """How long a yearly moment's dedup key lives: twice the rule's window, at least
    YEAR_DEDUP_MIN_S."""
    return max(max(1, int(rule.window.total_seconds())) * 2, YEAR_DEDUP_MIN_S)


def identifier_pseudonym(kind: int, value: str) -> str:
    """The pseudonym the engine keys an identifier's state by (as events spell it)."""
    return pseudonymise(f"{kind}:{value}")


def identifier_pseudonyms(erasure: Erasure) -> list[str]:
    """Pseudonyms of every identifier of the erasure, and of the canonical id as a customer id."""
    named = {f"{int(IdentifierKind.CUSTOMER_ID)}:{erasure.customer_id}", *erasure.identifiers}
    return sorted(pseudonymise(identifier) for identifier in named)


def _windows(now: datetime, window_s: float, reach_s: float) -> range:
    """Indexes of the windows of width `window_s` whose keys may still exist at `now`: keys
    live 2 windows, and their firing time lies up to `reach_s` before their creation and up
    to a day after now."""
    width = max(1.0, window_s)
    first = math.floor((now.timestamp() - 2 * width - reach_s) / width)
    last = math.floor((now + _FUTURE).timestamp() / width)
    return range(first, last + 1)


def _years(now: datetime, reach_s: float) -> range:
    """Years whose yearly-moment keys may still exist at `now`: created up to `reach_s` ago,
    and a local year may differ from the UTC year by one."""
    first = (now - timedelta(seconds=reach_s)).year - 1
    return range(first, (now + _FUTURE).year + 2)


@dataclasses.dataclass(frozen=True)
class StateKeys:
    """The engine's key names (engine.py documents the layout)."""

    prefix: str

    def dedup(self, subject: str, rule: str, window: int | str) -> str:
        return f"{self.prefix}:dedup:{subject}:{rule}:{window}"

    def count(self, subject: str, window: int) -> str:
        return f"{self.prefix}:count:{subject}:{window}"

    def cool(self, subject: str) -> str:
        return f"{self.prefix}:cool:{subject}"

    def replenishment(self, identifier: str) -> str:
        return f"{self.prefix}:rep:{identifier}"

    def timers_of(self, identifier: str) -> str:
        return f"{self.prefix}:tk:{identifier}"

    def outbound_of(self, subject: str) -> str:
        return f"{self.prefix}:out:{subject}"

    def erased(self, identifier: str) -> str:
        return f"{self.prefix}:erased:{identifier}"

    @property
    def due(self) -> str:
        return f"{self.prefix}:due"

    @property
    def timer(self) -> str:
        return f"{self.prefix}:timer"


def windowed_keys(
    keys: StateKeys,
    subject: str,
    rules: Rules,
    now: datetime,
    staleness_s: float,
    firing_window_s: float,
) -> list[str]:
    """Every dedup and firing-count key of `subject` that may exist at `now`."""
    found = [
        keys.dedup(subject, rule.name, window)
        for rule in rules.rules
        for window in _windows(now, rule.window.total_seconds(), staleness_s)
    ]
    # Every moment an anniversary rule may name, not only its current events (the file may
    # have changed), and the older per-year window.
    moments = ("", *ANNIVERSARIES)
    for rule in rules.of_kind("anniversary"):
        found += [
            keys.dedup(subject, rule.name, year_window(year, moment))
            for year in _years(now, year_dedup_s(rule) + staleness_s)
            for moment in moments
        ]
    found += [keys.count(subject, w) for w in _windows(now, firing_window_s, staleness_s)]
    return found


# The first lines of a script that writes what names an identifier: it returns nil, writing
# nothing, when the identifier's tombstone says it was erased at or after `recorded` (ms),
# the time the events the write comes from were recorded.
ERASED_SINCE = """
local erased = redis.call('GET', {tombstone})
if erased and tonumber(erased) >= tonumber({recorded}) then return nil end
"""

# XADD and the customer's index of outbound entries in one step, unless the identifier was
# erased since. KEYS: stream, index, the recipient's tombstone. ARGV: maxlen, index TTL
# seconds, recorded (ms), then field, value pairs. Returns the entry id, or nil.
_PUBLISH = (
    ERASED_SINCE.format(tombstone="KEYS[3]", recorded="ARGV[3]")
    + """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 4))
redis.call('SADD', KEYS[2], id)
redis.call('EXPIRE', KEYS[2], ARGV[2])
return id
"""
)


# A customer's replenishment histories (HSET and EXPIRE), unless the identifier was erased
# since. KEYS: the history hash, the identifier's tombstone. ARGV: TTL seconds, recorded
# (ms), then product, history pairs. Returns 1 if written, or nil.
_REMEMBER = (
    ERASED_SINCE.format(tombstone="KEYS[2]", recorded="ARGV[2]")
    + """
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
)


async def remember_histories(
    client: redis.Redis,
    key: str,
    tombstone: str,
    recorded_ms: int,
    histories: dict[str, str],
    ttl_s: int,
) -> bool:
    """Writes replenishment histories under `key`; False, writing nothing, when
    `tombstone` says the customer was erased at or after `recorded_ms`."""
    pairs = [part for product, history in histories.items() for part in (product, history)]
    return bool(await client.eval(_REMEMBER, 2, key, tombstone, ttl_s, recorded_ms, *pairs))


async def publish_outbound(
    client: redis.Redis,
    stream: str,
    maxlen: int,
    index: str,
    tombstone: str,
    recorded_ms: int,
    fields: dict[str, str],
) -> str | None:
    """Appends an outbound action and indexes it under its customer; returns the entry id,
    or None, publishing nothing, when `tombstone` says the recipient was erased at or after
    `recorded_ms`."""
    pairs = [part for field, value in fields.items() for part in (field, value)]
    entry_id = await client.eval(
        _PUBLISH, 3, stream, index, tombstone, maxlen, OUTBOUND_INDEX_TTL_S, recorded_ms, *pairs
    )
    return None if entry_id is None else _text(entry_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def forget(
    client: redis.Redis,
    keys: StateKeys,
    erasure: Erasure,
    *,
    rules: Rules,
    now: datetime,
    staleness_s: float,
    firing_window_s: float,
    outbound_stream: str,
    tombstone_ttl_s: int,
) -> int:
    """Deletes the customer's state, timers and outbound entries; leaves a tombstone per
    identifier so a batch recorded before the erasure but processed after it (another
    replica, a claimed entry) cannot create state again. Idempotent; returns keys and
    entries removed."""
    subject = pseudonymise(erasure.customer_id)
    identifiers = identifier_pseudonyms(erasure)
    # Tombstones first: a timer or outbound entry written after them is refused (the
    # scripts above), and one written before them is in the indexes read next.
    async with client.pipeline(transaction=False) as pipe:
        for identifier in identifiers:
            pipe.set(keys.erased(identifier), erasure.recorded_ms, ex=tombstone_ttl_s)
        await pipe.execute()
    async with client.pipeline(transaction=False) as pipe:
        for identifier in identifiers:
            pipe.smembers(keys.timers_of(identifier))
        pipe.smembers(keys.outbound_of(subject))
        indexed = await pipe.execute()
    timers = sorted({_text(key) for members in indexed[:-1] for key in members})
    outbound = sorted({_text(entry) for entry in indexed[-1]})
    doomed = [
        *windowed_keys(keys, subject, rules, now, staleness_s, firing_window_s),
        keys.cool(subject),
        keys.outbound_of(subject),
        *(keys.replenishment(identifier) for identifier in identifiers),
        *(keys.timers_of(identifier) for identifier in identifiers),
    ]
    async with client.pipeline(transaction=False) as pipe:
        if timers:
            pipe.zrem(keys.due, *timers)
            pipe.hdel(keys.timer, *timers)
        if outbound:
            pipe.xdel(outbound_stream, *outbound)
        pipe.delete(*doomed)
        replies = await pipe.execute()
    return sum(int(r) for r in replies)


async def erased_before(
    client: redis.Redis, keys: StateKeys, identifiers: Iterable[str]
) -> dict[str, int]:
    """Identifier pseudonym -> time (ms) of its latest erasure, for those erased lately."""
    named = sorted(set(identifiers))
    if not named:
        return {}
    values = await client.mget([keys.erased(identifier) for identifier in named])
    return {
        identifier: int(value)
        for identifier, value in zip(named, values, strict=True)
        if value is not None
    }
