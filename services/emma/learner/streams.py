"""The learner's side of the decision and reward streams: one consumer group on each.

An entry stays pending (in the group's PEL) until the learner acknowledges it, which it
does only in the same transaction that stores the model having learned from it. So the
PEL is exactly what the latest checkpoint has not learned yet: a restarted learner
reloads the checkpoint and reads the PEL again, and nothing is lost or learned twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis

from emma.runtime.redis_client import ensure_group

# A stream entry: its id and fields (None when the entry was trimmed away meanwhile).
Entry = tuple[str, dict[str, str] | None]


def _entries(raw: Sequence[Any]) -> list[Entry]:
    decoded: list[Entry] = []
    for entry_id, fields in raw:
        values = (
            None
            if not fields
            else {key.decode(): value.decode(errors="replace") for key, value in fields.items()}
        )
        decoded.append((entry_id.decode(), values))
    return decoded


@dataclasses.dataclass(frozen=True)
class Streams:
    client: aioredis.Redis
    decisions: str
    rewards: str
    group: str
    consumer: str
    batch: int

    async def ensure_groups(self) -> None:
        """Creates the groups at the start of each stream, so decisions logged before the
        learner first ran are learned too."""
        for stream in (self.decisions, self.rewards):
            await ensure_group(self.client, stream, self.group, start="0")

    async def claim(self) -> int:
        """Takes over entries other consumers of the group left pending (e.g. a learner
        that ran under another name). Safe only while holding the lease."""
        claimed = 0
        for stream in (self.decisions, self.rewards):
            start = "0-0"
            while True:
                # redis-py drops the cursor of a JUSTID reply, so the entries come along.
                cursor, entries, *_ = await self.client.xautoclaim(
                    stream, self.group, self.consumer, 0, start, count=self.batch
                )
                start = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
                claimed += len(entries)
                if start == "0-0":
                    break
        return claimed

    async def read(self, stream: str, after: str = ">", block_ms: int | None = None) -> list[Entry]:
        """New entries (`>`), or this consumer's pending ones after the id `after`."""
        reply = await self.client.xreadgroup(
            self.group, self.consumer, {stream: after}, count=self.batch, block=block_ms
        )
        if not reply:
            return []
        # [[stream, [(id, fields), ...]]] for the one stream asked for.
        return _entries(cast(list[Any], reply)[0][1])

    async def read_all(
        self,
        stream: str,
        after: str = ">",
        before_page: Callable[[], Awaitable[None]] | None = None,
    ) -> list[Entry]:
        """Every new (or pending) entry, page by page, until the stream has no more;
        `before_page` is awaited before each page (a backlog may take many)."""
        entries: list[Entry] = []
        while True:
            if before_page is not None:
                await before_page()
            page = await self.read(stream, after)
            entries.extend(page)
            if len(page) < self.batch:
                return entries
            if after != ">":
                after = page[-1][0]

    async def fetch(self, entry_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Decision entries by id, in one round trip; trimmed ones are missing."""
        if not entry_ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xrange(self.decisions, min=entry_id, max=entry_id)
            replies = await pipe.execute()
        found: dict[str, dict[str, str]] = {}
        for reply in replies:
            for entry_id, fields in _entries(reply):
                if fields is not None:
                    found[entry_id] = fields
        return found

    async def time_ms(self) -> int:
        """Redis's clock, the one stream entry ids are made of."""
        seconds, micros = await self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000
