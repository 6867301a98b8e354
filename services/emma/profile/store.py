"""The profile store on Redis: identities, atomic aggregation, preferences, consent, rights."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import redis.asyncio as redis
from redis.exceptions import WatchError

from emma.profile import aggregates, codec, consent, scripts
from emma.profile.config import ProfileConfig
from emma.profile.keys import CustomerKeys, customer_keys, identifier_key
from emma.profile.model import (
    ConsentChange,
    ConsentState,
    CustomerRef,
    EraseResult,
    Event,
    Export,
    IdentifierKind,
    LinkResult,
    Preferences,
    Profile,
    RecordResult,
)
from emma.runtime.errors import Aborted, FailedPrecondition, NotFound

# Concurrent batches for different customers of one request; each is one script call.
_CUSTOMER_CONCURRENCY = 32
_WATCH_ATTEMPTS = 20
_ALREADY_LINKED = "identifier already belongs to another profile; merging is not supported yet"


class ProfileStore:
    """All Redis access of the profile service. Times come from the caller, for testability."""

    def __init__(self, client: redis.Redis, config: ProfileConfig) -> None:
        self._redis = client
        self._prefix = config.key_prefix
        self._half_life_s = config.half_life_s
        self._ttl_s = config.ttl_s
        self._default_zone = config.default_time_zone
        self._record = client.register_script(scripts.RECORD_EVENTS)
        self._delete_if_owned = client.register_script(scripts.DELETE_IF_OWNED)

    async def close(self) -> None:
        await self._redis.aclose()

    def keys(self, customer_id: str) -> CustomerKeys:
        return customer_keys(self._prefix, customer_id)

    # --- identities -------------------------------------------------------------------------

    async def resolve(self, ref: CustomerRef) -> str | None:
        """The canonical id `ref` resolves to, or None; a customer id is its own canonical id."""
        found = _text(await self._redis.get(identifier_key(self._prefix, ref)))
        if found:
            return found
        return ref.value if ref.kind == IdentifierKind.CUSTOMER_ID else None

    async def _resolve_or_create(self, ref: CustomerRef) -> str:
        """Resolves `ref`, linking it to a new canonical id when it was never seen."""
        key = identifier_key(self._prefix, ref)
        for _ in range(_WATCH_ATTEMPTS):
            found = _text(await self._redis.get(key))
            if found:
                return found
            candidate = ref.value if ref.kind == IdentifierKind.CUSTOMER_ID else uuid.uuid4().hex
            # NX: of two writers seeing a new identifier at once, exactly one id wins.
            if await self._redis.set(key, candidate, nx=True, ex=self._ttl_s):
                return candidate
        raise Aborted("customer: identifier changed concurrently, retry")

    async def _expire_index(self, members: Sequence[str]) -> None:
        """Index keys live in other slots, so their TTL is refreshed outside the transaction."""
        if not members:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.expire(identifier_key(self._prefix, CustomerRef.decode(member)), self._ttl_s)
            await pipe.execute()

    def _touch(
        self, pipe: Any, keys: CustomerKeys, refs: Sequence[CustomerRef], now: datetime
    ) -> None:
        """Queues what every write does: profile timestamps, identifiers, TTL of every key."""
        at = repr(aggregates.epoch(now))
        pipe.hsetnx(keys.profile, "customer_id", keys.customer_id)
        pipe.hsetnx(keys.profile, "created_at", at)
        pipe.hset(keys.profile, "updated_at", at)
        pipe.sadd(keys.ids, *(ref.encode() for ref in refs))
        for key in keys.all():
            pipe.expire(key, self._ttl_s)

    async def link_identity(
        self, ref: CustomerRef, identifier: CustomerRef, now: datetime
    ) -> LinkResult:
        if ref.kind == IdentifierKind.CUSTOMER_ID:
            customer_id: str | None = await self._resolve_or_create(ref)
        else:
            customer_id = await self.resolve(ref)
        if customer_id is None:
            raise NotFound("customer: no profile is known for this reference")
        index = identifier_key(self._prefix, identifier)
        owner = _text(await self._redis.get(index))
        if (
            owner is None
            and identifier.kind == IdentifierKind.CUSTOMER_ID
            and identifier.value != customer_id
            and await self._redis.exists(self.keys(identifier.value).profile)
        ):
            owner = identifier.value
        if owner is None:
            if await self._redis.set(index, customer_id, nx=True, ex=self._ttl_s):
                owner = customer_id
            else:
                owner = _text(await self._redis.get(index))
        if owner != customer_id:
            raise FailedPrecondition(_ALREADY_LINKED)
        keys = self.keys(customer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            self._touch(pipe, keys, [ref, identifier], now)
            pipe.smembers(keys.ids)
            results = await pipe.execute()
        await self._expire_index(sorted(results[-1]))
        return LinkResult(customer_id)

    # --- events -----------------------------------------------------------------------------

    async def record_events(self, events: Sequence[Event], now: datetime) -> RecordResult:
        """Applies a validated batch: atomically and idempotently per customer.

        Customers are independent transactions (they may live on different Cluster nodes);
        if Redis fails halfway, replaying the batch completes it without double counting.
        """
        refs = list(dict.fromkeys(event.customer for event in events))
        resolved = await asyncio.gather(*(self._resolve_or_create(ref) for ref in refs))
        customer_of = dict(zip(refs, resolved, strict=True))
        groups: dict[str, list[Event]] = {}
        for event in events:
            groups.setdefault(customer_of[event.customer], []).append(event)
        limit = asyncio.Semaphore(_CUSTOMER_CONCURRENCY)

        async def apply(customer_id: str, batch: list[Event]) -> RecordResult:
            async with limit:
                return await self._apply_events(customer_id, batch, now)

        results = await asyncio.gather(*(apply(cid, batch) for cid, batch in groups.items()))
        return sum(results, RecordResult())

    async def _apply_events(
        self, customer_id: str, events: Sequence[Event], now: datetime
    ) -> RecordResult:
        payload = {
            "cid": customer_id,
            "now": aggregates.epoch(now),
            "ttl": self._ttl_s,
            "hl": self._half_life_s,
            "max_life": aggregates.MAX_LIFE_EVENTS,
            "ids": sorted({event.customer.encode() for event in events}),
            "events": [
                {"id": event.event_id, "ops": aggregates.event_ops(event, self._default_zone)}
                for event in events
            ],
        }
        keys = self.keys(customer_id)
        accepted, duplicates, members = await self._record(
            keys=keys.all(), args=[json.dumps(payload)]
        )
        await self._expire_index(members)
        return RecordResult(int(accepted), int(duplicates))

    # --- reads ------------------------------------------------------------------------------

    async def _read(self, customer_id: str) -> codec.StoredCustomer:
        """One consistent snapshot of the customer's keys (one round trip, one slot)."""
        keys = self.keys(customer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.profile)
            pipe.smembers(keys.ids)
            for key in (
                keys.categories,
                keys.products,
                keys.stores,
                keys.channels,
                keys.hours,
                keys.preferences,
                keys.consent,
            ):
                pipe.hgetall(key)
            profile, ids, cat, prod, stores, chan, hours, prefs, effective = await pipe.execute()
        return codec.StoredCustomer(
            customer_id, profile, ids, cat, prod, stores, chan, hours, prefs, effective
        )

    async def get_profile(self, ref: CustomerRef, now: datetime) -> Profile | None:
        customer_id = await self.resolve(ref)
        if customer_id is None:
            return None
        stored = await self._read(customer_id)
        if not stored.exists:
            return None
        return codec.build_profile(stored, now, self._half_life_s)

    # --- preferences and consent ------------------------------------------------------------

    async def update_preferences(
        self, ref: CustomerRef, prefs: Preferences, fields: Sequence[str], now: datetime
    ) -> Preferences:
        """Replaces the named fields; returns the preferences as stored afterwards."""
        customer_id = await self._resolve_or_create(ref)
        keys = self.keys(customer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.preferences, mapping=_mapping(codec.encode_preferences(prefs, fields)))
            self._touch(pipe, keys, [ref], now)
            pipe.hgetall(keys.preferences)
            pipe.smembers(keys.ids)
            results = await pipe.execute()
        await self._expire_index(sorted(results[-1]))
        return codec.decode_preferences(results[-2])

    async def update_consent(
        self, ref: CustomerRef, changes: Sequence[ConsentChange], now: datetime
    ) -> tuple[ConsentState, ...]:
        """Appends to the ledger and updates the effective state in one transaction."""
        customer_id = await self._resolve_or_create(ref)
        keys = self.keys(customer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_ATTEMPTS):
                try:
                    await pipe.watch(keys.consent)
                    stored = cast(dict[str, str], await pipe.hgetall(keys.consent))
                    effective = codec.decode_effective(stored)
                    for change in changes:
                        consent.apply_change(effective, change)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.rpush(keys.consent_ledger, *map(codec.encode_consent_change, changes))
                    pipe.delete(keys.consent)
                    pipe.hset(keys.consent, mapping=_mapping(codec.encode_effective(effective)))
                    self._touch(pipe, keys, [ref], now)
                    pipe.smembers(keys.ids)
                    results = await pipe.execute()
                    break
                except WatchError:
                    continue
            else:
                raise Aborted("changes: consent changed concurrently, retry")
        await self._expire_index(sorted(results[-1]))
        return consent.ordered(effective)

    # --- data subject rights ----------------------------------------------------------------

    async def export_customer(self, ref: CustomerRef, now: datetime) -> Export | None:
        """Everything held: the profile, the consent ledger and every key as raw JSON."""
        customer_id = await self.resolve(ref)
        if customer_id is None:
            return None
        keys = self.keys(customer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in keys.all():
                pipe.type(key)
            types = await pipe.execute()
        held = [(key, kind) for key, kind in zip(keys.all(), types, strict=True) if kind != "none"]
        if not held:
            return None
        readers = {"hash": "hgetall", "set": "smembers", "list": "lrange", "string": "get"}
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, kind in held:
                if kind == "list":
                    pipe.lrange(key, 0, -1)
                else:
                    getattr(pipe, readers[kind])(key)
            values = await pipe.execute()
        raw: dict[str, object] = {}
        for (key, _), value in zip(held, values, strict=True):
            raw[key] = sorted(value) if isinstance(value, set) else value
        members = cast(list[str], raw.get(keys.ids, []))
        index_keys = [identifier_key(self._prefix, CustomerRef.decode(m)) for m in members]
        if index_keys:
            owners = await self._redis.mget(index_keys)
            raw.update({key: owner for key, owner in zip(index_keys, owners, strict=True) if owner})
        stored = await self._read(customer_id)
        ledger = tuple(
            codec.decode_consent_change(text)
            for text in cast(list[str], raw.get(keys.consent_ledger, []))
        )
        profile = codec.build_profile(stored, now, self._half_life_s)
        return Export(profile, ledger, raw)

    async def erase_customer(self, ref: CustomerRef) -> EraseResult:
        """Deletes the identifier index entries, then every key of the customer; idempotent."""
        customer_id = await self.resolve(ref)
        if customer_id is None:
            return EraseResult(erased=False, identifiers_removed=0)
        keys = self.keys(customer_id)
        members = cast(set[str], await self._redis.smembers(keys.ids))
        refs = {CustomerRef.decode(member) for member in members}
        refs |= {ref, CustomerRef(IdentifierKind.CUSTOMER_ID, customer_id)}
        # Index entries first: if erasure stops halfway, the identifier set still lists them.
        async with self._redis.pipeline(transaction=False) as pipe:
            for each in sorted(refs, key=lambda r: (r.kind, r.value)):
                await self._delete_if_owned(
                    keys=[identifier_key(self._prefix, each)], args=[customer_id], client=pipe
                )
            removed = sum(int(n) for n in await pipe.execute())
        deleted = int(await self._redis.delete(*keys.all()))
        return EraseResult(erased=deleted > 0 or removed > 0, identifiers_removed=removed)


def _text(value: bytes | str | None) -> str | None:
    """Values are str (the client decodes responses); this narrows redis-py's wider types."""
    return value.decode() if isinstance(value, bytes) else value


def _mapping(values: dict[str, str]) -> dict[Any, Any]:
    return cast(dict[Any, Any], values)
