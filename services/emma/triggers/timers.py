"""The engine's timers in Redis: firings in a hash, due times in a sorted set, taken atomically."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis

from emma.triggers.erasure import ERASED_SINCE, TIMER_INDEX_SLACK
from emma.triggers.kinds import Firing, Timer

# A yearly moment that must be tried again waits under its own key, so the retry does not
# replace the timer of its next year.
RETRY_SUFFIX = "|retry"

# Takes a due timer, if it is still the one read: the same body, due by now. A yearly timer
# is replaced by its next year's in the same step (its key stays in the identifier's index,
# whose TTL follows the new due time), so a crash, another replica or an erasure in between
# can neither lose the next year nor bring an erased timer back; any other is removed.
# KEYS: due zset, timer hash, the identifier's index. ARGV: key, body read, now (epoch s),
# then for a yearly timer: next due (epoch s), next body, index TTL (s). Returns 1 if taken.
_TAKE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[3]) then return 0 end
if ARGV[4] then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[6], 'NX')
  redis.call('EXPIRE', KEYS[3], ARGV[6], 'GT')
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""


# Writes a timer and indexes it under its identifier, unless the identifier was erased
# since the firing's events were recorded (an erasure processed meanwhile must not get the
# timer, which names the identifier, back). KEYS: due zset, timer hash, the identifier's
# index, its tombstone. ARGV: key, body, due (epoch s), index TTL (s), recorded (ms).
# Returns 1 if written.
_SCHEDULE = (
    ERASED_SINCE.format(tombstone="KEYS[4]", recorded="ARGV[5]")
    + """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[4], 'NX')
redis.call('EXPIRE', KEYS[3], ARGV[4], 'GT')
return 1
"""
)


def index_ttl_s(due: datetime, now: datetime) -> int:
    """TTL of an identifier's timer index that holds a timer due at `due`."""
    return int(max(due - now + TIMER_INDEX_SLACK, TIMER_INDEX_SLACK).total_seconds())


def encode(firing: Firing) -> str:
    raw: dict[str, Any] = {
        "rule": firing.rule,
        "customer": list(firing.customer),
        "event": firing.trigger_event_id,
        "at": firing.at.timestamp(),
        "store": firing.store_id,
        "location": list(firing.location) if firing.location else None,
        "categories": list(firing.categories),
    }
    if firing.day:
        raw["day"] = firing.day
    if firing.year:
        raw["year"] = firing.year
    if firing.moment:
        raw["moment"] = firing.moment
    if firing.recorded_ms:
        raw["recorded"] = firing.recorded_ms
    return json.dumps(raw)


def decode(body: str | bytes) -> Firing:
    raw = json.loads(body)
    location = raw.get("location")
    return Firing(
        rule=raw["rule"],
        customer=(int(raw["customer"][0]), str(raw["customer"][1])),
        trigger_event_id=raw["event"],
        at=datetime.fromtimestamp(float(raw["at"]), UTC),
        store_id=raw.get("store", ""),
        location=(float(location[0]), float(location[1])) if location else None,
        categories=tuple(raw.get("categories", ())),
        day=str(raw.get("day", "")),
        year=int(raw.get("year", 0)),
        moment=str(raw.get("moment", "")),
        recorded_ms=int(raw.get("recorded", 0)),
    )


class TimerStore:
    """Takes due timers; `due` and `timer` are the engine's keys (engine.py lists them)."""

    def __init__(self, client: redis.Redis, due: str, timer: str) -> None:
        self.due = due
        self.timer = timer
        self._take = client.register_script(_TAKE)
        self._schedule = client.register_script(_SCHEDULE)

    async def schedule(self, timer: Timer, now: datetime, index: str, tombstone: str) -> bool:
        """Writes `timer` (replacing one with its key) and adds it to the identifier's
        `index`; False, writing nothing, when `tombstone` says the identifier was erased
        since the firing's events were recorded."""
        args: list[str | float | int] = [
            timer.key,
            encode(timer.firing),
            timer.due.timestamp(),
            index_ttl_s(timer.due, now),
            timer.firing.recorded_ms,
        ]
        keys = [self.due, self.timer, index, tombstone]
        return bool(await self._schedule(keys=keys, args=args))

    async def take(
        self,
        key: str,
        body: str | bytes,
        now: datetime,
        index: str,
        then: Timer | None = None,
    ) -> bool:
        """Takes the timer `key` read as `body` for this replica; `then` replaces it (a
        yearly moment's next year). False when it changed or another replica took it."""
        args: list[Any] = [key, body, now.timestamp()]
        if then is not None:
            args += [then.due.timestamp(), encode(then.firing), index_ttl_s(then.due, now)]
        return bool(await self._take(keys=[self.due, self.timer, index], args=args))
