"""The Lua scripts of the profile store, and a runner that calls them by SHA, batched or alone."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException

from emma.runtime.redis_client import RedisClient

# Each script works on one customer's keys (keys.CustomerKeys.script_keys), so on a Redis
# Cluster it runs on the node that owns the customer's slot.
NAMES = (
    "record",
    "read",
    "snapshot",
    "absorb",
    "preferences",
    "consent",
    "redirect",
    "finalize",
    "unfreeze",
    "erase",
    "unlink",
    "wallet",
)


@contextlib.contextmanager
def _cluster_outage_as_connection_error() -> Iterator[None]:
    """A cluster client that reaches no node says so with a generic cluster error; callers
    should see the outage as what it is (UNAVAILABLE, not UNKNOWN)."""
    try:
        yield
    except RedisClusterException as error:
        if str(error).startswith("Redis Cluster cannot be connected"):
            raise RedisConnectionError(str(error)) from error
        raise


def _source(name: str) -> str:
    return resources.files("emma.profile").joinpath("lua", f"{name}.lua").read_text()


def load_sources() -> dict[str, str]:
    common = _source("common")
    return {name: f"{common}\n{_source(name)}" for name in NAMES}


Call = tuple[str, Sequence[str], Sequence[str]]


class ScriptRunner:
    """Runs the scripts with EVALSHA; loads them (on every node) when Redis does not know them.

    redis-py's own Script objects check with SCRIPT EXISTS before every pipeline, one
    round trip more than needed, and refuse pipelined EVALSHA on a cluster client.
    """

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._sources = load_sources()
        self._shas = {
            name: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
            for name, source in self._sources.items()
        }
        # One load at a time: a burst of first calls must not become a burst of loads.
        self._loading = asyncio.Lock()
        self._loads = 0

    async def load(self, seen_loads: int | None = None) -> None:
        """Loads every script on every node, unless another load finished since `seen_loads`.

        A single Redis gets them in one round trip: after a restart every process that
        calls the scripts (profile service, decision replicas) loads them while Redis is
        still busy replaying its log. A cluster client sends each to every primary.
        """
        async with self._loading:
            if seen_loads is not None and seen_loads != self._loads:
                return
            if isinstance(self._client, Redis):
                async with self._client.pipeline(transaction=False) as pipe:
                    for source in self._sources.values():
                        pipe.script_load(source)
                    await pipe.execute()
            else:
                for source in self._sources.values():
                    await self._client.script_load(source)
            self._loads += 1

    async def _ready(self) -> int:
        if self._loads == 0:
            await self.load(0)
        return self._loads

    def _command(self, name: str, keys: Sequence[str], args: Sequence[str]) -> list[Any]:
        return ["EVALSHA", self._shas[name], len(keys), *keys, *args]

    async def call(self, name: str, keys: Sequence[str], args: Sequence[str] = ()) -> Any:
        """One script call, one round trip."""
        with _cluster_outage_as_connection_error():
            loads = await self._ready()
            try:
                return await self._client.execute_command(*self._command(name, keys, args))
            except NoScriptError:  # a node restarted or failed over: its script cache is empty
                await self.load(loads)
                return await self._client.execute_command(*self._command(name, keys, args))

    async def call_many(self, calls: Sequence[Call]) -> list[Any]:
        """The calls in one pipeline (per node on a cluster); results in order.

        Raises the first error other than a script unknown to Redis, which loads the
        scripts and repeats the calls that met it.
        """
        if len(calls) <= 1:
            return [await self.call(*call) for call in calls]
        with _cluster_outage_as_connection_error():
            loads = await self._ready()
            results = await self._pipelined(calls)
            missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
            if missing:
                await self.load(loads)
                again = await self._pipelined([calls[i] for i in missing])
                for index, result in zip(missing, again, strict=True):
                    results[index] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _pipelined(self, calls: Sequence[Call]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for name, keys, args in calls:
                pipe.execute_command(*self._command(name, keys, args))
            return list(await pipe.execute(raise_on_error=False))
