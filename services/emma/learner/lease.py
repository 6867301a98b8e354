"""The active learner's lease: one learner at a time trains and publishes.

Two learners on one consumer group would split the entries between them and publish
models that each saw half; during a rolling update the new learner waits for the old
one's lease to end (it releases it on SIGTERM, or it expires).
"""

from __future__ import annotations

import uuid

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


class LeaseLost(RuntimeError):
    """Another learner holds the lease now; this one must stop and start over."""


class Lease:
    def __init__(self, client: aioredis.Redis, key: str, ttl_s: float, name: str) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        # Unique per process: a restarted learner with the same name is another holder.
        self.owner = f"{name}:{uuid.uuid4().hex}"
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def acquire(self) -> bool:
        """Takes the lease if it is free (or already ours); False while another holds it."""
        if await self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def holder(self) -> str | None:
        raw = await self.client.get(self.key)
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])
