"""Model snapshots in one Redis hash: the learner's checkpoint is the version replicas serve.

The hash holds `version` (an integer, polled by every replica), `data` (VW's model bytes,
with the state to resume learning) and `meta` (JSON: counts, stream progress, agreement
with the baseline). One HSET writes all three, so a reader never sees a mixed snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from emma.decision.bandit import Apprenticeship, Bandit, Model

log = logging.getLogger(__name__)

VERSION = "version"
DATA = "data"
META = "meta"


class SnapshotMismatch(ValueError):
    """The snapshot was trained with other VW arguments than this replica serves with."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    version: int
    data: bytes
    meta: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The model version decisions carry, e.g. `learner-12`."""
        return f"learner-{self.version}"

    def fields(self) -> dict[str, bytes | str | int]:
        return {
            VERSION: self.version,
            DATA: self.data,
            META: json.dumps(dict(self.meta), separators=(",", ":")),
        }

    @property
    def apprenticeship(self) -> Apprenticeship | None:
        state = self.meta.get("agreement")
        if not isinstance(state, Mapping):
            return None
        return Apprenticeship(
            agreement=float(state.get("rate", 0.0)),
            measured=int(state.get("measured", 0)),
            threshold=float(state.get("threshold", 1.0)),
            graduated=bool(state.get("graduated", False)),
        )


def _snapshot(values: Sequence[bytes | str | None]) -> Snapshot | None:
    version, data, meta = values
    # Model bytes only come from a client that returns bytes.
    if version is None or not isinstance(data, bytes):
        return None
    return Snapshot(
        version=int(version),
        data=data,
        meta=json.loads(meta) if meta else {},
    )


async def read_snapshot(client: aioredis.Redis, key: str) -> Snapshot | None:
    """The published snapshot, or None before the first; `client` must return bytes."""
    return _snapshot(await client.hmget(key, [VERSION, DATA, META]))


def read_snapshot_sync(client: redis.Redis, key: str) -> Snapshot | None:
    return _snapshot(client.hmget(key, [VERSION, DATA, META]))


async def read_version(client: aioredis.Redis, key: str) -> int | None:
    raw = await client.hget(key, VERSION)
    return None if raw is None else int(raw)


def load_model(snapshot: Snapshot, vw_args: str) -> Model:
    """The snapshot as a servable model; refuses one trained with other VW arguments."""
    trained_with = snapshot.meta.get("vw_args")
    if trained_with is not None and trained_with != vw_args:
        raise SnapshotMismatch(
            f"{snapshot.name} was trained with EMMA_VW_ARGS={trained_with!r}, "
            f"this replica serves {vw_args!r}"
        )
    return Model.from_bytes(vw_args, snapshot.data, snapshot.name, snapshot.apprenticeship)


def initial_model(redis_url: str, key: str, vw_args: str) -> tuple[Model, int | None]:
    """The latest snapshot at start-up, so a new replica never serves a cold model while a
    trained one exists; the cold model when there is none or Redis cannot be reached."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2.0, socket_timeout=5.0)
    try:
        snapshot = read_snapshot_sync(client, key)
        if snapshot is not None:
            return load_model(snapshot, vw_args), snapshot.version
    except (redis.RedisError, SnapshotMismatch, RuntimeError, ValueError) as error:
        log.warning("no model snapshot at start-up", extra={"error": str(error)})
    finally:
        client.close()
    return Model.cold(vw_args), None


class ModelFollower:
    """Polls the published version and hot-swaps each new snapshot into the bandit.

    The poll is one HGET; the model is read only when the version changed, and loaded in
    a thread so decisions keep flowing while VW reads it. Any failure keeps the model
    being served and is retried at the next poll.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        bandit: Bandit,
        interval_s: float,
        loaded: int | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.bandit = bandit
        self.interval_s = interval_s
        self.loaded = loaded
        self._refused: int | None = None
        self._stopping = asyncio.Event()

    async def poll(self) -> bool:
        """Loads the published snapshot if it is new; True when the bandit swapped."""
        version = await read_version(self.client, self.key)
        if version is None or version in (self.loaded, self._refused):
            return False
        snapshot = await read_snapshot(self.client, self.key)
        if snapshot is None:
            return False
        try:
            model = await asyncio.to_thread(load_model, snapshot, self.bandit.vw_args)
        except SnapshotMismatch as error:
            self._refused = snapshot.version
            log.error("model snapshot refused", extra={"error": str(error)})
            return False
        self.bandit.swap(model)
        self.loaded = snapshot.version
        log.info(
            "model swapped",
            extra={"model_version": snapshot.name, "updates": snapshot.meta.get("updates")},
        )
        return True

    async def run(self) -> None:
        """Polls until stopped; stopping is cooperative, as a cancellation may be lost."""
        while not self._stopping.is_set():
            try:
                await self.poll()
            except (redis.RedisError, RuntimeError, ValueError) as error:
                problem = f"{type(error).__name__}: {error}"
                log.warning("model poll failed", extra={"error": problem})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)

    def stop(self) -> None:
        self._stopping.set()
