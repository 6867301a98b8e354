"""Erasure in the decision service: an erased customer's contact records are deleted.

The profile service appends an erasure entry to its profile-events stream (emma.profile
.outbox) in the same atomic step as the erasure. The decision replicas read the stream in
one consumer group, so one replica handles each entry; it deletes the contact records
through `contacts.forget_customer` and then acknowledges, so delivery is at least once:
an entry a replica took and did not finish (it crashed, Redis failed) stays pending and
another replica claims it after `claim_idle_s`. Forgetting twice is harmless. Batch entries
on the same stream are the trigger engine's: acknowledged here and left alone.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis

from emma.decision.contacts import forget_customer
from emma.profile.outbox import Erasure, release
from emma.runtime.privacy import pseudonymise
from emma.runtime.redis_client import ensure_group

log = logging.getLogger(__name__)

_READ_COUNT = 100


def consumer_name() -> str:
    """This process's name in the group: host and pid, unique among replicas and workers."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ErasureConsumer:
    """Reads erasure entries in a consumer group and forgets each customer's contacts.

    `client` reads the stream and must return bytes (batch entries hold serialized
    protobuf); `contacts_client` is the one the contact store uses (by default `client`).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        contacts_client: redis.Redis | None = None,
        stream: str,
        group: str,
        key_prefix: str,
        claim_idle_s: float,
        consumer: str = "",
        block_ms: int = 1000,
    ) -> None:
        self.client = client
        self.contacts_client = contacts_client or client
        self.stream = stream
        self.group = group
        self.key_prefix = key_prefix
        self.claim_idle_ms = max(1, int(claim_idle_s * 1000))
        self.consumer = consumer or consumer_name()
        self.block_ms = block_ms
        self.stats: collections.Counter[str] = collections.Counter()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def connect(
        cls, redis_url: str, contacts_client: redis.Redis, **settings: Any
    ) -> ErasureConsumer:
        """A consumer with its own bytes-returning client of `redis_url`; close() closes it."""
        client = redis.Redis.from_url(redis_url, decode_responses=False, socket_connect_timeout=2.0)
        return cls(client, contacts_client=contacts_client, **settings)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def close(self) -> None:
        """Stops reading (an entry in hand stays pending for another replica) and disconnects."""
        self.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.aclose()

    async def ensure_group(self) -> None:
        """Creates the group once, from the stream's start: erasures appended before any
        replica ran are handled too (forgetting is idempotent)."""
        await ensure_group(self.client, self.stream, self.group, start="0")

    async def run(self) -> None:
        """Reads and claims until stopped; a Redis outage is waited out, entries stay pending."""
        while not self._stopping.is_set():
            try:
                await self.ensure_group()
                while not self._stopping.is_set():
                    await self.step(self.block_ms)
            except (redis.RedisError, OSError) as error:
                self.stats["redis_errors"] += 1
                log.warning("erasure consumer: Redis unavailable", extra={"error": str(error)})
                await asyncio.sleep(self.block_ms / 1000)
            except Exception as error:
                # Anything else must not end erasure for the life of the replica: the entry
                # stays pending and is tried again (here or, once idle, by another replica).
                self.stats["errors"] += 1
                log.exception("erasure consumer failed", extra={"error": type(error).__name__})
                await asyncio.sleep(self.block_ms / 1000)

    def stop(self) -> None:
        self._stopping.set()

    async def step(self, block_ms: int | None = None) -> int:
        """One round: entries abandoned by other replicas, then new ones; how many were read."""
        return await self.claim_abandoned() + await self.read_new(block_ms)

    async def read_new(self, block_ms: int | None = None) -> int:
        reply: Any = await self.client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=_READ_COUNT, block=block_ms
        )
        entries = [entry for _, stream_entries in reply or [] for entry in stream_entries]
        await self._handle(entries)
        return len(entries)

    async def claim_abandoned(self) -> int:
        reply: Any = await self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=_READ_COUNT,
        )
        entries = list(reply[1]) if reply else []
        await self._handle(entries)
        return len(entries)

    async def _handle(self, entries: Sequence[Any]) -> None:
        others = []
        for entry_id, fields in entries:
            erasure = self._erasure(fields)
            if erasure is None:
                others.append(entry_id)
                continue
            removed = await forget_customer(
                self.contacts_client, self.key_prefix, erasure.customer_id, erasure.identifiers
            )
            # Deleted once every group (the trigger engine's too) is done: it names identifiers.
            await release(self.client, self.stream, self.group, entry_id)
            self.stats["erased"] += 1
            log.info(
                "contact records erased",
                extra={"customer": pseudonymise(erasure.customer_id), "removed": removed},
            )
        if others:
            await self.client.xack(self.stream, self.group, *others)

    def _erasure(self, fields: Any) -> Erasure | None:
        if fields is None:  # deleted while pending (a batch the trigger engine processed)
            return None
        try:
            return Erasure.of_entry(fields)
        except ValueError:
            self.stats["malformed"] += 1
            log.warning("erasure consumer: malformed erasure entry skipped")
            return None
