"""The profile event outbox: each recorded batch on a Redis stream, for the trigger engine.

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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis.asyncio as redis

from emma.profile.model import RecordResult
from emma.profile.v1 import profile_pb2
from emma.runtime.redis_client import RedisClient

log = logging.getLogger(__name__)

# Fields of a stream entry.
EVENTS_FIELD = "events"
RECORDED_FIELD = "recorded_ms"
COUNT_FIELD = "count"


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
