"""Identity resolution on Redis: homes, redirects, linking, and the multi-step merge protocol.

Every identifier has a home record (keys.home_id): the profile it created or a redirect to
the profile it belongs to. Merging two profiles cannot be one script on a Redis Cluster
(their keys live in different slots), so it runs in steps that are each atomic and
idempotent, and anyone who meets a half-done merge completes it (docs/profile.md):

1. mark: the loser is frozen (Y = "<survivor>|<started>") and read in the same script;
2. absorb: the survivor is replaced by the combination of both, if unchanged since it was
   read (version G), takes in the loser's offer wallet in the same script, and remembers
   the loser (m<loser>), so a repeat does nothing;
3. repoint: the loser's identifiers' homes are redirected to the survivor;
4. finalize: the loser's keys become a redirect to the survivor (its wallet is deleted).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from emma.profile import aggregates, codec, merge
from emma.profile.config import ProfileConfig
from emma.profile.keys import CustomerKeys, customer_keys, home_id, is_derived, replay_window
from emma.profile.model import CustomerRef, IdentifierKind, LinkResult
from emma.profile.record import CAPS, SCALE, Record, identifier_field, identifier_of
from emma.profile.scripts import ScriptRunner
from emma.profile.wallet import CLOSED_GRACE
from emma.runtime.errors import Aborted, NotFound
from emma.runtime.privacy import pseudonymise
from emma.runtime.redis_client import RedisClient

log = logging.getLogger(__name__)

# Redirects may chain briefly while merges complete; more hops than this is a cycle.
MAX_HOPS = 6
# Attempts of a compare-and-set write (absorb, consent) before the caller is asked to retry.
CAS_ATTEMPTS = 20
# A profile's other keys and its identifiers' redirect records get their TTL renewed on the
# first write of each period (a day, shorter for tiny TTLs); redirects outlive the profile
# by two periods, so they never expire first.
MAX_REFRESH_S = 86_400

Reply = list[Any]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What lua/snapshot.lua returned for one customer id."""

    status: str  # OK (live), X (redirect), Y (frozen by a merge), NONE
    marker: str
    stored: codec.Stored
    window: int


def identifier_fields(refs: Iterable[CustomerRef]) -> list[str]:
    """The identifier fields to record; a derived customer id is not an identifier of its own."""
    return sorted(
        {
            identifier_field(ref)
            for ref in refs
            if not (ref.kind == IdentifierKind.CUSTOMER_ID and is_derived(ref.value))
        }
    )


class Identities:
    """Finds the live profile behind any identifier; links identifiers and merges profiles."""

    def __init__(self, client: RedisClient, runner: ScriptRunner, config: ProfileConfig) -> None:
        self._client = client
        self.runner = runner
        self.prefix = config.key_prefix
        self.ttl_s = config.ttl_s
        self.refresh_s = max(1, min(MAX_REFRESH_S, config.ttl_s // 4))
        self.redirect_ttl_s = config.ttl_s + 2 * self.refresh_s
        self.half_life_s = config.half_life_s
        self.window_s = config.replay_window_s

    # --- keys and TTLs ----------------------------------------------------------------------

    def window(self, now: datetime) -> int:
        return replay_window(aggregates.epoch(now), self.window_s)

    def keys(self, customer_id: str, now: datetime, window: int | None = None) -> CustomerKeys:
        return customer_keys(
            self.prefix, customer_id, self.window(now) if window is None else window
        )

    def seen_ttl(self, window: int, now: datetime) -> int:
        """An event id is known until the window after its own ends (or the profile expires)."""
        until_window_passed = math.ceil((window + 2) * self.window_s - aggregates.epoch(now))
        return max(1, min(self.ttl_s, until_window_passed))

    def write_args(self, now: datetime) -> dict[str, Any]:
        """What every write script needs to finish (lua/common.lua finish_write)."""
        return {
            "now": math.floor(aggregates.epoch(now)),
            "ttl": self.ttl_s,
            "refresh": self.refresh_s,
        }

    async def refresh_homes(self, fields: Sequence[str], customer_id: str) -> None:
        """Extends the TTL of the redirect records of a profile's identifiers (other slots)."""
        homes = {home_id(identifier_of(field)) for field in fields} - {customer_id}
        if not homes:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for home in sorted(homes):
                pipe.expire(customer_keys(self.prefix, home).main, self.redirect_ttl_s)
            await pipe.execute()

    # --- following ----------------------------------------------------------------------------

    async def follow(self, customer_id: str, reply: Reply, now: datetime) -> str:
        """Where a diverted record leads: a redirect's target, or the survivor of the merge
        that froze it (which this call completes)."""
        if reply[0] == "X":
            return str(reply[1])
        return await self.complete_merge(customer_id, now)

    async def on_profile(
        self, customer_id: str, script: str, args: Sequence[str], now: datetime
    ) -> tuple[str, Reply]:
        """Runs a customer script where `customer_id` leads; returns that id and the reply."""
        for _ in range(MAX_HOPS):
            keys = self.keys(customer_id, now).script_keys()
            reply = await self.runner.call(script, keys, args)
            if reply[0] not in ("X", "Y"):
                return customer_id, reply
            customer_id = await self.follow(customer_id, reply, now)
        raise Aborted("customer: the identifier is being relinked; retry")

    async def snapshot(
        self, customer_id: str, now: datetime, window: int | None = None
    ) -> Snapshot:
        keys = self.keys(customer_id, now, window)
        reply = await self.runner.call("snapshot", keys.script_keys(), ["read"])
        return self._snapshot(customer_id, reply, keys.window)

    def _snapshot(self, customer_id: str, reply: Reply, window: int) -> Snapshot:
        status, marker, main, consent, ledger, prefs, life, seen, seen_prev, wallet = reply
        stored = codec.Stored(
            customer_id,
            Record.parse(codec.pairs(main)),
            codec.pairs(consent),
            codec.pairs(prefs),
            life,
            ledger,
            seen,
            seen_prev,
            codec.pairs(wallet),
        )
        return Snapshot(str(status), str(marker), stored, window)

    async def live(self, customer_id: str, now: datetime) -> Snapshot | None:
        """The live profile `customer_id` leads to, completing merges on the way; None if none."""
        for _ in range(MAX_HOPS):
            snap = await self.snapshot(customer_id, now)
            if snap.status == "OK":
                return snap
            if snap.status == "NONE":
                return None
            customer_id = await self.follow(customer_id, [snap.status, snap.marker], now)
        raise Aborted("customer: the identifier is being relinked; retry")

    # --- linking ------------------------------------------------------------------------------

    def record_args(self, now: datetime) -> list[str]:
        """lua/record.lua's ARGV[2..]: what is the same for every customer of a batch."""
        window = self.window(now)
        return [
            str(math.floor(aggregates.epoch(now))),
            str(self.ttl_s),
            str(self.seen_ttl(window, now)),
            str(self.refresh_s),
            repr(self.half_life_s),
            repr(SCALE / aggregates.WEIGHT_UNITS),
            str(aggregates.MAX_LIFE_EVENTS),
            "".join(f"{family}{cap}" for family, cap in CAPS.items()),
        ]

    def _touch_args(self, refs: Iterable[CustomerRef], now: datetime) -> list[str]:
        """lua/record.lua with no events: adds identifiers, creating the profile if needed."""
        payload = {"ids": identifier_fields(refs), "seen": [], "u": {}}
        return [json.dumps(payload), *self.record_args(now)]

    async def attach(self, customer_id: str, refs: Iterable[CustomerRef], now: datetime) -> str:
        """Records `refs` as identifiers of the profile `customer_id` leads to (creating it)."""
        customer_id, reply = await self.on_profile(
            customer_id, "record", self._touch_args(refs, now), now
        )
        await self.refresh_homes(reply[3], customer_id)
        return customer_id

    async def link(self, ref: CustomerRef, identifier: CustomerRef, now: datetime) -> LinkResult:
        if ref.kind == IdentifierKind.CUSTOMER_ID and not is_derived(ref.value):
            mine = await self.attach(home_id(ref), [ref], now)  # a CRM id may be new
        else:
            found = await self.live(home_id(ref), now)
            if found is None:
                raise NotFound("customer: no profile is known for this reference")
            mine = found.stored.customer_id
        theirs = await self.live(home_id(identifier), now)
        if theirs is None:
            # The profile lists the identifier before the identifier points at it, so an
            # erasure or merge that starts in between still finds the identifier.
            mine = await self.attach(mine, [identifier], now)
            home = home_id(identifier)
            keys = self.keys(home, now).script_keys()
            reply = await self.runner.call("redirect", keys, ["", mine, str(self.redirect_ttl_s)])
            if reply[0] == "OK":
                return LinkResult(mine)
            # Someone gave the identifier a profile of its own meanwhile: merge with it.
            other = home if reply[0] == "PROFILE" else str(reply[1])
            theirs = await self.live(other, now)
            if theirs is None:
                raise Aborted("identifier: changed concurrently, retry")
        if theirs.stored.customer_id == mine:
            await self.attach(mine, [identifier], now)
            return LinkResult(mine)
        survivor, loser = await self.merge(mine, theirs.stored.customer_id, now)
        survivor = await self.attach(survivor, [ref, identifier], now)
        if survivor == loser:
            return LinkResult(survivor)
        return LinkResult(survivor, merged=True, merged_customer_id=loser)

    # --- merging ------------------------------------------------------------------------------

    async def merge(self, a: str, b: str, now: datetime) -> tuple[str, str]:
        """Merges the profiles `a` and `b` lead to; returns (survivor, loser)."""
        for _ in range(MAX_HOPS):
            first, second = await self.live(a, now), await self.live(b, now)
            if first is None or second is None:
                raise Aborted("identifier: a profile disappeared during the merge, retry")
            a, b = first.stored.customer_id, second.stored.customer_id
            if a == b:
                return a, a
            survivor, loser = merge.survivor_first(
                (a, first.stored.record.number("C")), (b, second.stored.record.number("C"))
            )
            started = str(math.floor(aggregates.epoch(now)))
            marker = f"{survivor}|{started}"
            keys = self.keys(loser, now)
            reply = await self.runner.call(
                "snapshot", keys.script_keys(), ["mark", survivor, started]
            )
            snap = self._snapshot(loser, reply, keys.window)
            if snap.status == "Y" and snap.marker == marker:
                log.info(
                    "merging profiles",
                    extra={"survivor": pseudonymise(survivor), "loser": pseudonymise(loser)},
                )
                return await self._finish(loser, snap, now), loser
            # The loser changed under us (redirected, frozen by another merge, erased):
            # complete what is in progress and look again.
            if snap.status == "Y":
                await self.complete_merge(loser, now)
        raise Aborted("identifier: the profiles kept changing during the merge, retry")

    async def complete_merge(self, loser: str, now: datetime) -> str:
        """Completes the merge that froze `loser`; returns where the loser's data lives now."""
        snap = await self.snapshot(loser, now)
        if snap.status == "X":
            return snap.marker
        if snap.status != "Y":
            return loser  # the merge was given up and the profile unfrozen
        return await self._finish(loser, snap, now)

    async def _finish(self, loser: str, snap: Snapshot, now: datetime) -> str:
        target, _, started = snap.marker.rpartition("|")
        survivor = await self._absorb(target, snap, float(started), now)
        if survivor is None:
            keys = self.keys(loser, now).script_keys()
            await self.runner.call("unfreeze", keys, [snap.marker])
            raise Aborted("identifier: the surviving profile disappeared during the merge, retry")
        ttl = str(self.redirect_ttl_s)
        calls = [
            ("redirect", self.keys(home, now).script_keys(), [loser, survivor, ttl])
            for home in sorted({home_id(ref) for ref in snap.stored.record.refs()})
            if home not in (loser, survivor)
        ]
        for (_, keys, _), reply in zip(calls, await self.runner.call_many(calls), strict=True):
            if reply[0] != "OK":
                # An identifier with a profile of its own: the next link of it merges that.
                log.warning("identifier not repointed", extra={"home": pseudonymise(keys[0])})
        keys = self.keys(loser, now, snap.window).script_keys()
        await self.runner.call("finalize", keys, [survivor, ttl])
        return survivor

    async def _absorb(
        self, target: str, loser: Snapshot, started: float, now: datetime
    ) -> str | None:
        """Step 2: the survivor (wherever `target` leads) takes in the loser; None if gone."""
        loser_id = loser.stored.customer_id
        customer_id = target
        for _ in range(CAS_ATTEMPTS):
            snap = await self.snapshot(customer_id, now, loser.window)
            if snap.status in ("X", "Y"):
                customer_id = await self.follow(customer_id, [snap.status, snap.marker], now)
                continue
            record = snap.stored.record
            if snap.status == "NONE" or record.number("C") > started:
                return None  # erased, or a newer profile under the same id
            if loser_id in record.merged:
                return customer_id
            merged = merge.combine(snap.stored, loser.stored, self.half_life_s)
            payload = {
                **self.write_args(now),
                "g": record.scalars.get("G", "0"),
                "sttl": self.seen_ttl(loser.window, now),
                "sttl_prev": self.seen_ttl(loser.window - 1, now),
                "grace": int(CLOSED_GRACE.total_seconds()),
                **dataclasses.asdict(merged),
            }
            keys = self.keys(customer_id, now, loser.window).script_keys()
            reply = await self.runner.call("absorb", keys, [json.dumps(payload)])
            if reply[0] == "OK":
                await self.refresh_homes(reply[1], customer_id)
                return customer_id
            if reply[0] in ("X", "Y"):
                customer_id = await self.follow(customer_id, reply, now)
            elif reply[0] == "NONE":
                return None
        raise Aborted("identifier: the profile kept changing during the merge, retry")
