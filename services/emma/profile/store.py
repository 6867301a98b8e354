"""The profile store on Redis: events, reads, preferences, consent and data subject rights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as redis

from emma.profile import aggregates, batch, codec, consent
from emma.profile.config import ProfileConfig
from emma.profile.identity import CAS_ATTEMPTS, MAX_HOPS, Identities, identifier_fields
from emma.profile.keys import customer_keys, home_id
from emma.profile.model import (
    ConsentChange,
    ConsentState,
    CustomerRef,
    EraseResult,
    Event,
    Export,
    LinkResult,
    Preferences,
    Profile,
    RecordResult,
)
from emma.profile.outbox import Erasure, append_erasure, identifier_text
from emma.profile.record import Record
from emma.profile.scripts import ScriptRunner
from emma.runtime.errors import Aborted
from emma.runtime.redis_client import RedisClient


class ProfileStore:
    """All Redis access of the profile service. Times come from the caller, for testability."""

    def __init__(self, client: RedisClient, config: ProfileConfig) -> None:
        self._redis = client
        self._config = config
        self._runner = ScriptRunner(client)
        self.identities = Identities(client, self._runner, config)
        # A single node lets the read script follow a redirect itself; a cluster does not.
        self._follow_in_script = "1" if isinstance(client, redis.Redis) else "0"

    async def close(self) -> None:
        await self._redis.aclose()

    async def load_scripts(self) -> None:
        """Connects and loads the scripts now, ahead of a first call with a budget."""
        await self._runner.load(0)

    # --- events -------------------------------------------------------------------------------

    async def record_events(self, events: Sequence[Event], now: datetime) -> RecordResult:
        """Applies a validated batch of domain events (see record_batch)."""
        checked = batch.of_events(events, self._config.default_time_zone)
        return (await self.record_batch(checked, now)).result

    async def record_batch(self, checked: batch.Batch, now: datetime) -> batch.Recorded:
        """Applies a checked batch: one script per customer, atomic and idempotent each, all
        customers' scripts in one pipeline.

        Customers are independent (on a cluster they live on different nodes); if Redis fails
        halfway, replaying the batch completes it without counting anything twice.
        """
        common = self.identities.record_args(now)
        now_s = aggregates.epoch(now)
        half_life_s = self._config.half_life_s
        groups = list(checked.customers.values())
        payloads = [group.payload(now_s, half_life_s) for group in groups]
        calls = [
            ("record", self.identities.keys(group.home, now).script_keys(), [payload, *common])
            for group, payload in zip(groups, payloads, strict=True)
        ]
        replies = await self._runner.call_many(calls)
        parts = [
            await self._recorded(group, payload, reply, now, common)
            for group, payload, reply in zip(groups, payloads, replies, strict=True)
        ]
        return batch.Recorded.combine(parts, checked.repeats)

    async def _recorded(
        self,
        group: batch.CustomerEvents,
        payload: str,
        reply: list[Any],
        now: datetime,
        common: list[str],
    ) -> batch.Recorded:
        """The result of one customer's record script, finishing what it asked for."""
        customer_id, repeated = group.home, 0
        for _ in range(MAX_HOPS + CAS_ATTEMPTS):
            if reply[0] == "OK":
                await self.identities.refresh_homes(reply[3], customer_id)
                result = RecordResult(int(reply[1]), int(reply[2]) + repeated)
                applied = (
                    (batch.Applied(customer_id, tuple(group.positions)),) if result.accepted else ()
                )
                return batch.Recorded(result, applied)
            if reply[0] == "PARTIAL":
                # Some were applied before (a replay): fold the others anew, without them.
                known = {int(position) - 1 for position in reply[1]}
                repeated += len(known)
                group = group.without(known)
                payload = group.payload(aggregates.epoch(now), self._config.half_life_s)
            else:
                # A linked or merged identifier: its home redirects to the profile.
                customer_id = await self.identities.follow(customer_id, reply, now)
            keys = self.identities.keys(customer_id, now).script_keys()
            reply = await self._runner.call("record", keys, [payload, *common])
        raise Aborted("events: the customer's profile kept changing, retry")

    # --- reads --------------------------------------------------------------------------------

    async def get_profile(self, ref: CustomerRef, now: datetime) -> Profile | None:
        """One script call for any identifier on a single Redis, and on a cluster for an
        identifier that created its profile; one more per redirect on a cluster."""
        profile, _ = await self.get_profile_and_wallet(ref, now)
        return profile

    async def get_profile_and_wallet(
        self, ref: CustomerRef, now: datetime, *, complete: bool = True
    ) -> tuple[Profile | None, dict[str, str]]:
        """The profile, and its offer wallet's hash as stored (wallet.py), read by the same
        script call(s) as get_profile; not `complete`, without what no decision reads
        (codec.build_profile)."""
        customer_id = home_id(ref)
        args = [self._follow_in_script, self._config.key_prefix]
        for _ in range(MAX_HOPS):
            keys = self.identities.keys(customer_id, now).script_keys()
            reply = await self._runner.call("read", keys, args)
            status = reply[0]
            if status == "OK":
                stored = codec.Stored(
                    reply[1] or customer_id,
                    Record.parse(codec.pairs(reply[2])),
                    codec.pairs(reply[3]),
                    codec.pairs(reply[4]),
                    reply[5],
                )
                profile = codec.build_profile(
                    stored, now, self._config.half_life_s, complete=complete
                )
                return profile, codec.pairs(reply[6])
            if status == "NONE":
                return None, {}
            frozen = reply[2] if status == "Y" and reply[2] else customer_id
            customer_id = await self.identities.follow(frozen, reply, now)
        raise Aborted("customer: the identifier is being relinked; retry")

    # --- identities ---------------------------------------------------------------------------

    async def link_identity(
        self, ref: CustomerRef, identifier: CustomerRef, now: datetime
    ) -> LinkResult:
        return await self.identities.link(ref, identifier, now)

    # --- preferences and consent --------------------------------------------------------------

    async def update_preferences(
        self, ref: CustomerRef, prefs: Preferences, fields: Sequence[str], now: datetime
    ) -> Preferences:
        """Replaces the named fields; returns the preferences as stored afterwards."""
        payload = {
            **self.identities.write_args(now),
            "ids": identifier_fields([ref]),
            "set": codec.encode_preferences(prefs, fields),
        }
        customer_id, reply = await self.identities.on_profile(
            home_id(ref), "preferences", [json.dumps(payload)], now
        )
        await self.identities.refresh_homes(reply[2], customer_id)
        return codec.decode_preferences(codec.pairs(reply[1]))

    async def update_consent(
        self, ref: CustomerRef, changes: Sequence[ConsentChange], now: datetime
    ) -> tuple[ConsentState, ...]:
        """Appends to the ledger and stores the new effective state, compare-and-set."""
        customer_id = home_id(ref)
        read_args = ["0", self._config.key_prefix]
        for _ in range(CAS_ATTEMPTS):
            customer_id, reply = await self.identities.on_profile(
                customer_id, "read", read_args, now
            )
            stored = {} if reply[0] == "NONE" else codec.pairs(reply[2])
            effective = codec.decode_effective({} if reply[0] == "NONE" else codec.pairs(reply[3]))
            for change in changes:
                consent.apply_change(effective, change)
            payload = {
                **self.identities.write_args(now),
                "k": stored.get("K", "0"),
                "ids": identifier_fields([ref]),
                "append": [codec.encode_consent_change(change) for change in changes],
                "effective": codec.encode_effective(effective),
            }
            keys = self.identities.keys(customer_id, now).script_keys()
            written = await self._runner.call("consent", keys, [json.dumps(payload)])
            if written[0] == "OK":
                await self.identities.refresh_homes(written[1], customer_id)
                return consent.ordered(effective)
        raise Aborted("changes: consent changed concurrently, retry")

    # --- data subject rights ------------------------------------------------------------------

    async def export_customer(self, ref: CustomerRef, now: datetime) -> Export | None:
        """Everything held: the profile, the consent ledger and every key as raw JSON."""
        found = await self.identities.live(home_id(ref), now)
        if found is None:
            return None
        stored = found.stored
        keys = self.identities.keys(stored.customer_id, now)
        raw: dict[str, object] = {
            keys.main: dict(sorted(stored.record.encode().items())),
            keys.consent: dict(stored.consent),
            keys.consent_ledger: list(stored.ledger),
            keys.preferences: dict(stored.preferences),
            keys.life_events: list(stored.life_events),
            keys.seen(keys.window): sorted(stored.seen),
            keys.seen(keys.window - 1): sorted(stored.seen_prev),
        }
        raw = {key: value for key, value in raw.items() if value}
        raw.update(await self._redirects(stored))
        ledger = tuple(codec.decode_consent_change(text) for text in stored.ledger)
        profile = codec.build_profile(stored, now, self._config.half_life_s)
        return Export(profile, ledger, raw)

    async def _redirects(self, stored: codec.Stored) -> dict[str, object]:
        """The redirect records of the profile's identifiers (in other slots)."""
        homes = sorted({home_id(ref) for ref in stored.record.refs()} - {stored.customer_id})
        if not homes:
            return {}
        mains = [customer_keys(self._config.key_prefix, home).main for home in homes]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in mains:
                pipe.hgetall(key)
            values: list[Any] = await pipe.execute()
        return {key: value for key, value in zip(mains, values, strict=True) if value}

    async def erase_customer(
        self, ref: CustomerRef, now: datetime, stream: str = "", maxlen: int = 1
    ) -> EraseResult:
        """Deletes the identifiers' redirect records, then every key of the profile and its
        wallet; appends the erasure to `stream` (the profile-events outbox) unless empty.

        Redirects first: if erasure stops halfway, the profile still lists its identifiers
        and erasing again finishes the job. On a single Redis the erase script appends the
        erasure in its atomic step; on a cluster the stream lives in another slot, so it is
        appended first: an erasure never happens without its entry, and a failure after the
        append fails the call, whose retry appends again (consumers are idempotent). An
        unknown customer still gets an entry: consumers may hold counters of the identifier.
        """
        now_ms = int(aggregates.epoch(now) * 1000)
        found = await self.identities.live(home_id(ref), now)
        if found is None:
            if stream:
                erasure = Erasure(home_id(ref), (identifier_text(ref.kind, ref.value),), now_ms)
                await append_erasure(self._redis, stream, maxlen, erasure)
            return EraseResult(erased=False, identifiers_removed=0)
        customer_id = found.stored.customer_id
        refs = found.stored.record.refs()
        homes = sorted({home_id(each) for each in refs} - {customer_id})
        calls = [
            ("unlink", self.identities.keys(home, now).script_keys(), [customer_id])
            for home in homes
        ]
        await self._runner.call_many(calls)
        in_script = stream if self._follow_in_script == "1" else ""
        if stream and not in_script:
            named = sorted(identifier_text(r.kind, r.value) for r in refs)
            erasure = Erasure(customer_id, tuple(named), now_ms)
            await append_erasure(self._redis, stream, maxlen, erasure)
        tag_opening = (
            len(customer_keys(self._config.key_prefix, customer_id).tag) - len(customer_id) - 1
        )
        args = [in_script, str(maxlen), str(now_ms), str(tag_opening)]
        _, reply = await self.identities.on_profile(customer_id, "erase", args, now)
        return EraseResult(erased=int(reply[1]) > 0, identifiers_removed=len(refs))
