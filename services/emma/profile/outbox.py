"""The profile event outbox: recorded batches and erasures on a Redis stream, for consumers.

One XADD per batch (not per event): the entry holds the batch as a serialized
RecordEventsRequest, the time it was recorded, and how many events it holds. The stream
is trimmed to about `maxlen` entries.

Delivery is at least once with a gap. The entry is appended after the batch's atomic
writes: a crash between the two loses that batch's entry (the events are recorded, no
trigger sees them), and a batch that was wholly a replay (every event id seen before) is
not appended again, so a retried bulk load cannot push live entries out of the capped
stream. A batch that mixes new and replayed events is appended whole; consumers skip
event ids they processed before. On a Redis Cluster the stream is one key on one node,
apart from the profiles' slots, so the append is not part of any profile's transaction.

An erasure is one entry too (`erasure`: JSON with the canonical id and every identifier,
`recorded_ms`), so every consumer can find and delete what it keeps about the customer.
Unlike a batch it has no gap: on a single Redis the erase script appends it in the same
atomic step as the deletion; on a cluster it is appended before the deletion, so an
erasure that happened always has its entry (see docs/security.md). Several consumer groups
read erasures; `release` deletes an erasure entry once every group has processed it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as redis

from emma.profile.model import RecordResult
from emma.profile.v1 import profile_pb2
from emma.runtime.redis_client import RedisClient

log = logging.getLogger(__name__)

# Fields of a stream entry.
EVENTS_FIELD = "events"
RECORDED_FIELD = "recorded_ms"
COUNT_FIELD = "count"
ERASURE_FIELD = "erasure"


@dataclasses.dataclass(frozen=True)
class Erasure:
    """A customer was erased: the canonical id and every identifier, `<kind number>:<value>`
    as the profile stores it and the decision service and trigger engine pseudonymise it."""

    customer_id: str
    identifiers: tuple[str, ...]
    recorded_ms: int

    def body(self) -> str:
        """The entry's `erasure` field (lua/erase.lua writes the same JSON)."""
        return json.dumps({"customer_id": self.customer_id, "identifiers": list(self.identifiers)})

    def fields(self) -> dict[str, str | int]:
        return {ERASURE_FIELD: self.body(), RECORDED_FIELD: self.recorded_ms}

    @staticmethod
    def of_entry(fields: Mapping[Any, Any]) -> Erasure | None:
        """The erasure an entry holds; None for a batch entry. Raises ValueError if malformed."""
        raw = fields.get(ERASURE_FIELD.encode(), fields.get(ERASURE_FIELD))
        if raw is None:
            return None
        try:
            body = json.loads(raw)
            recorded = fields.get(RECORDED_FIELD.encode(), fields.get(RECORDED_FIELD, 0))
            customer_id = str(body["customer_id"])
            # An empty Lua table is encoded as {} by cjson: no identifiers.
            identifiers = tuple(str(i) for i in body.get("identifiers") or ())
            return Erasure(customer_id, identifiers, int(recorded))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError("malformed erasure entry") from error


def identifier_text(kind: int, value: str) -> str:
    """An identifier as erasure entries name it (a profile record's `#` field without `#`)."""
    return f"{int(kind)}:{value}"


async def append_erasure(client: RedisClient, stream: str, maxlen: int, erasure: Erasure) -> None:
    """Appends an erasure entry; raises on failure (an erasure must not lose its entry)."""
    await client.xadd(
        stream,
        erasure.fields(),  # type: ignore[arg-type]
        maxlen=maxlen,
        approximate=True,
    )


# Acknowledges an entry for one group, then deletes it if no group still has it to process:
# every group's last delivered id is at or past it and none holds it pending. Atomic, so
# two groups finishing together delete it exactly once. KEYS[1] stream; ARGV group, id.
_RELEASE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local ms, seq = parse(ARGV[2])
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local lms, lseq = parse(info['last-delivered-id'])
  if lms < ms or (lms == ms and lseq < seq) then return 0 end
  if #redis.call('XPENDING', KEYS[1], info['name'], ARGV[2], ARGV[2], 1) > 0 then return 0 end
end
return redis.call('XDEL', KEYS[1], ARGV[2])
"""


async def release(client: RedisClient, stream: str, group: str, entry_id: Any) -> bool:
    """Acknowledges an erasure entry for `group`; deletes it when every group is done with it
    (it holds identifiers of an erased customer). True when this call deleted it."""
    entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    deleted = await client.eval(_RELEASE, 1, stream, group, entry)
    return bool(deleted)


class Outbox:
    """Appends recorded batches to the profile-events stream; never fails the write."""

    def __init__(self, client: RedisClient, stream: str, maxlen: int) -> None:
        self._client = client
        self.stream = stream
        self.maxlen = maxlen
        self.failures = 0

    async def publish(self, events: Sequence[profile_pb2.Event], result: RecordResult) -> bool:
        """Appends the batch unless nothing in it was new; False when the append failed.

        The events are already recorded: a failed append is logged and counted, and the
        RecordEvents call still succeeds (failing it would make the client retry a batch
        that is then a replay, which is not appended either).
        """
        if result.accepted == 0 or not events:
            return True
        batch = profile_pb2.RecordEventsRequest(events=events).SerializeToString()
        fields: dict[str, bytes | int] = {
            EVENTS_FIELD: batch,
            RECORDED_FIELD: int(time.time() * 1000),
            COUNT_FIELD: len(events),
        }
        try:
            await self._client.xadd(
                self.stream,
                fields,  # type: ignore[arg-type]
                maxlen=self.maxlen,
                approximate=True,
            )
        except (redis.RedisError, OSError) as error:
            self.failures += 1
            log.warning(
                "profile event outbox append failed; triggers miss this batch",
                extra={"error": type(error).__name__, "events": len(events)},
            )
            return False
        return True
