"""The active learner's lease: one learner at a time trains and publishes.

Two learners on one consumer group would split the entries between them and publish
models that each saw half; during a rolling update the new learner waits for the old
one's lease to end (it releases it on SIGTERM, or it expires).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# A held lease is renewed once this share of its term has passed since the last renewal,
# so work between two checks may take up to the rest of the term.
RENEW_AFTER = 1 / 3


class LeaseLost(RuntimeError):
    """Another learner holds the lease now; this one must stop and start over."""


class Lease:
    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        ttl_s: float,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        # Unique per process: a restarted learner with the same name is another holder.
        self.owner = f"{name}:{uuid.uuid4().hex}"
        self._clock = clock
        # When the last renewal that succeeded was sent (None: not held).
        self._renewed_at: float | None = None
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def acquire(self) -> bool:
        """Takes the lease if it is free (or already ours); False while another holds it."""
        sent = self._clock()
        if await self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            self._renewed_at = sent
            return True
        return await self.renew()

    async def renew(self) -> bool:
        sent = self._clock()
        held = bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))
        self._renewed_at = sent if held else None
        return held

    def renewed(self, sent: float) -> None:
        """Records a renewal made by another command sent at `sent` (the checkpoint's
        transaction sets the lease's expiry too)."""
        self._renewed_at = sent

    async def keep(self) -> None:
        """Renews the lease when a third of its term has passed since the last renewal;
        raises LeaseLost if it expired or was taken meanwhile.

        Long work (a backlog learned after a restart or an outage) calls this between
        its parts, so the lease outlives work longer than its term, while a learner that
        stopped making progress stops renewing and loses it.
        """
        if self._renewed_at is None:
            raise LeaseLost("the lease is not held")
        if self._clock() - self._renewed_at < self.ttl_ms * RENEW_AFTER / 1000:
            return
        if not await self.renew():
            raise LeaseLost("the lease expired or was taken")

    async def holder(self) -> str | None:
        raw = await self.client.get(self.key)
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def release(self) -> None:
        self._renewed_at = None
        await self._release(keys=[self.key], args=[self.owner])
