"""The trigger engine: reads recorded events, fires rules, decides, publishes outbound actions.

State keys (prefix `emma:trg` by default; customer keys hold pseudonyms only):
  <p>:ev:<event id>                 string  the event was processed (idempotency), TTL
  <p>:dedup:<subject>:<rule>:<w>    string  the rule fired for the customer in window w
                                            (y<year>-<moment> for a yearly moment: its
                                            year and life event; y<year> in older keys)
  <p>:count:<subject>:<w>           string  firings of the customer in firing window w
  <p>:cool:<subject>                string  negative-sentiment cool-down, TTL = cool-down
  <p>:rep:<customer pseudonym>      hash    product -> "last,interval,count" (replenishment)
  <p>:due                           zset    timer key -> due epoch seconds
  <p>:timer                         hash    timer key -> JSON firing (holds the identifier);
                                            a yearly one is replaced by its next year's
                                            when taken (emma.triggers.timers)
  <p>:tk:<identifier pseudonym>     set     the identifier's timer keys (found at erasure)
  <p>:out:<customer pseudonym>      set     the customer's outbound entry ids (found at erasure)
  <p>:erased:<identifier pseudonym> string  time (ms) of the identifier's erasure, TTL

An erasure entry on the events stream deletes the customer's keys, timers and outbound
entries (emma.triggers.erasure); its tombstones make events recorded before the erasure,
if processed after it, change nothing, and refuse the timers, outbound actions and
replenishment histories of events and firings on their way when it was processed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import socket
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import redis.asyncio as redis

from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2
from emma.decision.v1 import decision_pb2
from emma.profile.model import IdentifierKind
from emma.profile.outbox import EVENTS_FIELD, RECORDED_FIELD, Erasure, release
from emma.profile.v1 import profile_pb2
from emma.runtime.privacy import pseudonymise
from emma.runtime.redis_client import ensure_group
from emma.triggers import erasure, kinds, timers
from emma.triggers.config import TriggerConfig
from emma.triggers.kinds import Firing, Timer
from emma.triggers.rules import Rule, Rules

if TYPE_CHECKING:
    from emma.context.v1.context_pb2_grpc import ContextServiceAsyncStub
    from emma.decision.v1.decision_pb2_grpc import DecisionServiceAsyncStub
    from emma.profile.v1.profile_pb2_grpc import ProfileServiceAsyncStub

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_CHANNELS = {
    "in_app": common_pb2.CHANNEL_IN_APP,
    "push": common_pb2.CHANNEL_PUSH,
    "email": common_pb2.CHANNEL_EMAIL,
    "sms": common_pb2.CHANNEL_SMS,
    "web": common_pb2.CHANNEL_WEB,
    "receipt": common_pb2.CHANNEL_RECEIPT,
    "cashier_prompt": common_pb2.CHANNEL_CASHIER_PROMPT,
    "store_screen": common_pb2.CHANNEL_STORE_SCREEN,
}
_CHANNEL_NAMES = {number: name for name, number in _CHANNELS.items()}
_READ_COUNT = 50


class Retry(Exception):
    """A dependency failed: the event stays pending and is processed again later."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclasses.dataclass
class Stubs:
    profile: ProfileServiceAsyncStub
    context: ContextServiceAsyncStub
    decision: DecisionServiceAsyncStub


class Engine:
    """One engine replica; replicas share the work through the consumer group."""

    def __init__(
        self,
        config: TriggerConfig,
        rules: Rules,
        client: redis.Redis,
        stubs: Stubs,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self.rules = rules
        self.redis = client
        self.stubs = stubs
        self.clock = clock
        self.consumer = config.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.stats: collections.Counter[str] = collections.Counter()
        self._stopping = asyncio.Event()
        self._p = config.state_prefix
        self.keys = erasure.StateKeys(config.state_prefix)
        self.timers = timers.TimerStore(client, self.keys.due, self.keys.timer)

    # --- the loop -----------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        """Creates the consumer group at the stream's end (new events only), once."""
        await ensure_group(self.redis, self.config.events_stream, self.config.group, start="$")

    async def run(self) -> None:
        """Reads, claims and scans until stopped; a Redis outage is waited out."""
        while not self._stopping.is_set():
            try:
                await self.ensure_group()
                while not self._stopping.is_set():
                    await self.step(block_ms=int(self.config.poll_s * 1000))
            except (redis.RedisError, OSError) as error:
                log.warning("trigger engine: Redis unavailable", extra={"error": str(error)})
                await asyncio.sleep(self.config.poll_s)

    async def stop(self) -> None:
        self._stopping.set()

    async def step(self, block_ms: int | None = None) -> int:
        """One round: new entries, entries abandoned by crashed consumers, due timers."""
        handled = await self.read_new(block_ms)
        handled += await self.claim_abandoned()
        handled += await self.scan_timers()
        return handled

    async def read_new(self, block_ms: int | None = None) -> int:
        reply: Any = await self.redis.xreadgroup(
            self.config.group,
            self.consumer,
            {self.config.events_stream: ">"},
            count=_READ_COUNT,
            block=block_ms,
        )
        entries = [entry for _, stream_entries in reply or [] for entry in stream_entries]
        return await self._handle_entries(entries)

    async def claim_abandoned(self) -> int:
        reply: Any = await self.redis.xautoclaim(
            self.config.events_stream,
            self.config.group,
            self.consumer,
            min_idle_time=int(self.config.claim_idle_s * 1000),
            start_id="0-0",
            count=_READ_COUNT,
        )
        return await self._handle_entries(list(reply[1]) if reply else [])

    async def _handle_entries(self, entries: Sequence[Any]) -> int:
        for entry_id, fields in entries:
            if fields is None:  # trimmed away while pending
                await self._done(entry_id)
                continue
            try:
                erased = Erasure.of_entry(fields)
            except ValueError:
                self.stats["skipped.malformed"] += 1
                log.warning("trigger engine: malformed erasure entry skipped")
                await self._done(entry_id)
                continue
            if erased is not None:
                # Other groups (the decision service's contact records) read it too: deleted
                # when the last of them is done. A Redis failure leaves it pending.
                await self.erase(erased)
                await release(self.redis, self.config.events_stream, self.config.group, entry_id)
                continue
            try:
                await self.handle_entry(fields)
            except Retry:
                self.stats["retry"] += 1
                continue  # stays pending: claimed again after claim_idle_s
            await self._done(entry_id)
        return len(entries)

    async def _done(self, entry_id: Any) -> None:
        # Deleted once processed: the batch holds identifiers and should not outlive its use
        # (an erased customer's events stay only while unprocessed). One group reads it.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(self.config.events_stream, self.config.group, entry_id)
            pipe.xdel(self.config.events_stream, entry_id)
            await pipe.execute()

    async def handle_entry(self, fields: dict[Any, Any]) -> None:
        raw = fields.get(EVENTS_FIELD.encode(), fields.get(EVENTS_FIELD))
        batch = profile_pb2.RecordEventsRequest()
        try:
            batch.ParseFromString(raw if isinstance(raw, bytes) else b"")
            recorded_ms = int(fields.get(RECORDED_FIELD.encode(), fields.get(RECORDED_FIELD, 0)))
        except Exception:
            self.stats["skipped.malformed"] += 1
            log.warning("trigger engine: malformed outbox entry skipped")
            return
        recorded = datetime.fromtimestamp(recorded_ms / 1000, UTC)
        named = {
            event.event_id: erasure.identifier_pseudonym(*kinds.customer_of(event))
            for event in batch.events
        }
        tombstones = await erasure.erased_before(self.redis, self.keys, named.values())
        for event in batch.events:
            if tombstones.get(named[event.event_id], -1) >= recorded_ms:
                # Recorded before its customer was erased: it must not bring state back.
                self.stats["skipped.erased"] += 1
                continue
            await self.handle_event(event, recorded)

    async def erase(self, erased: Erasure) -> int:
        """Deletes everything the engine keeps about an erased customer; idempotent."""
        removed = await erasure.forget(
            self.redis,
            self.keys,
            erased,
            rules=self.rules,
            now=self.clock(),
            staleness_s=self.config.staleness_s,
            firing_window_s=self.config.firing_window_s,
            outbound_stream=self.config.outbound_stream,
            tombstone_ttl_s=self._tombstone_ttl_s(),
        )
        self.stats["erased"] += 1
        log.info(
            "trigger state erased",
            extra={"customer": pseudonymise(erased.customer_id), "removed": removed},
        )
        return removed

    def _tombstone_ttl_s(self) -> int:
        """Longer than an entry can wait before it is processed in ordinary operation."""
        config = self.config
        return int(max(86_400.0, 4 * config.staleness_s, 4 * config.claim_idle_s))

    # --- events -------------------------------------------------------------------------------

    async def handle_event(self, event: profile_pb2.Event, recorded: datetime) -> None:
        """Each event once: its state updates, redemption rewards and immediate firings."""
        seen_key = f"{self._p}:ev:{event.event_id}"
        if await self.redis.exists(seen_key):
            self.stats["skipped.seen"] += 1
            return
        recorded_ms = round(recorded.timestamp() * 1000)
        at = event.time.ToDatetime(tzinfo=UTC) if event.HasField("time") else recorded
        stale = self.clock() - at > timedelta(seconds=self.config.staleness_s)
        payload = event.WhichOneof("payload")
        firings: list[Firing] = []
        if payload == "offer_response":
            await self._redeemed(event, at)
        elif payload == "purchase":
            await self._purchase(event, at, recorded_ms)
        elif payload == "interaction" and not stale:
            for rule in self.rules.of_kind("viewed_not_bought"):
                if (timer := kinds.viewed(rule, event, at)) is not None:
                    await self._schedule(_recorded_at(timer, recorded_ms))
        elif payload == "life_event":
            firings += await self._life_event(event, at, recorded_ms)
        elif payload == "support_contact":
            for rule in self.rules.of_kind("negative_sentiment"):
                if (firing := kinds.unhappy(rule, event, at)) is not None:
                    await self._cool_down(event, rule)
                    firings.append(firing)
        elif payload == "location" and self.rules.of_kind("geofence"):
            if stale:  # no context lookup for a ping that could not fire anyway
                self.stats["skipped.stale"] += 1
            else:
                firings += await self._geofence(event, at)
        staleness = timedelta(seconds=self.config.staleness_s)
        for firing in firings:
            if self.clock() - firing.at > staleness:
                self.stats["skipped.stale"] += 1
                continue
            await self.fire(dataclasses.replace(firing, recorded_ms=recorded_ms))
        # Marked last: a crash before this processes the event again, and every firing is
        # deduplicated per customer, rule and window.
        ttl = int(max(self.config.staleness_s, 86_400) * 2)
        await self.redis.set(seen_key, "1", ex=ttl)

    async def _redeemed(self, event: profile_pb2.Event, at: datetime) -> None:
        """A redeemed wallet offer rewards the decision that created it, exactly once."""
        response = event.offer_response
        if response.kind != profile_pb2.OFFER_RESPONSE_KIND_REDEEMED:
            return
        if not response.decision_event_id:
            return
        request = decision_pb2.RewardRequest(
            event_id=response.decision_event_id,
            value=self.config.redeem_reward,
            kind="redeem",
            idempotency_key=f"redeem:{event.event_id}",
        )
        request.time.FromDatetime(at)
        try:
            await self.stubs.decision.Reward(request, timeout=self.config.decide_timeout_s)
        except grpc.aio.AioRpcError as error:
            log.warning("trigger engine: reward failed", extra={"grpc_status": error.code().name})
            raise Retry from error
        self.stats["rewarded"] += 1

    async def _purchase(self, event: profile_pb2.Event, at: datetime, recorded_ms: int) -> None:
        for rule in self.rules.of_kind("viewed_not_bought"):
            for key in kinds.bought(rule, event):
                await self._cancel(key)
        for rule in self.rules.of_kind("replenishment"):
            products = kinds.replenishable(rule, event)
            if not products:
                continue
            identifier = erasure.identifier_pseudonym(*kinds.customer_of(event))
            key = self.keys.replenishment(identifier)
            stored = await self.redis.hmget(key, products)
            histories = {
                product: kinds.replenished(
                    kinds.History.decode(_text(old)) if old is not None else None, at
                )
                for product, old in zip(products, stored, strict=True)
            }
            if not await erasure.remember_histories(
                self.redis,
                key,
                self.keys.erased(identifier),
                recorded_ms,
                {product: history.encode() for product, history in histories.items()},
                int(timedelta(days=400).total_seconds()),
            ):
                self.stats["skipped.erased"] += 1
                return
            for timer in kinds.replenishment(rule, event, at, histories):
                await self._schedule(_recorded_at(timer, recorded_ms))

    async def _life_event(
        self, event: profile_pb2.Event, at: datetime, recorded_ms: int
    ) -> list[Firing]:
        firings = []
        for rule in self.rules.of_kind("life_event"):
            if (firing := kinds.life_event(rule, event, at)) is not None:
                firings.append(firing)
        for rule in self.rules.of_kind("anniversary"):
            zone = self.config.default_time_zone
            for outcome in kinds.anniversary(rule, event, at, self.clock(), zone):
                if isinstance(outcome, Timer):
                    await self._schedule(_recorded_at(outcome, recorded_ms))
                else:
                    # The day itself is the moment: recorded late on the day, it still counts.
                    firings.append(outcome)
        return firings

    async def _geofence(self, event: profile_pb2.Event, at: datetime) -> list[Firing]:
        request = context_pb2.ResolveRequest(touchpoint=common_pb2.TOUCHPOINT_TRIGGER)
        request.time.FromDatetime(at)
        request.location.CopyFrom(event.location.location)
        try:
            resolved = await self.stubs.context.Resolve(
                request, timeout=self.config.decide_timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise Retry from error
        context = resolved.context
        firings = []
        for rule in self.rules.of_kind("geofence"):
            firing = kinds.geofence(
                rule, event, at, context.store.store_id, context.in_store, context.store_open
            )
            if firing is not None:
                firings.append(firing)
        return firings

    async def _cool_down(self, event: profile_pb2.Event, rule: Rule) -> None:
        subject = await self._subject(kinds.customer_of(event))
        if subject:
            seconds = max(1, int(rule.cooldown.total_seconds()))
            await self.redis.set(f"{self._p}:cool:{subject}", rule.name, ex=seconds)

    # --- timers -------------------------------------------------------------------------------

    async def _schedule(self, timer: Timer) -> None:
        # The identifier's index of timers, so an erasure finds them without a scan; it
        # lives until a while after the latest of them is due.
        identifier = kinds.timer_identifier(timer.key)
        index = self.keys.timers_of(identifier)
        tombstone = self.keys.erased(identifier)
        if await self.timers.schedule(timer, self.clock(), index, tombstone):
            self.stats["scheduled"] += 1
        else:
            self.stats["skipped.erased"] += 1

    async def _cancel(self, key: str) -> None:
        if await self.redis.zrem(f"{self._p}:due", key):
            await self.redis.hdel(f"{self._p}:timer", key)
            self.stats["cancelled"] += 1

    async def scan_timers(self) -> int:
        """Fires the timers that are due; taking one decides which replica fires it."""
        now = self.clock()
        due = await self.redis.zrangebyscore(
            self.keys.due, "-inf", now.timestamp(), start=0, num=_READ_COUNT
        )
        handled = 0
        for raw_key in due:
            key = _text(raw_key)
            firing = await self._take(key, now)
            if firing is None:
                continue  # changed meanwhile, or another replica took it
            handled += 1
            if now - firing.at > timedelta(seconds=self.config.staleness_s):
                self.stats["skipped.stale"] += 1
                continue
            try:
                outcome = await self.fire(firing)
            except Retry:
                # Try again a little later, keeping the original moment.
                retry = Timer(key, now + timedelta(seconds=self.config.claim_idle_s), firing)
                if firing.day:
                    retry = Timer(
                        key + timers.RETRY_SUFFIX, retry.due, dataclasses.replace(firing, day="")
                    )
                await self._schedule(retry)
                continue
            if firing.day and outcome == "skipped.unknown_customer":
                # The profile is gone (expired or erased): no gesture next year either.
                await self._cancel(key)
        return handled

    async def _take(self, key: str, now: datetime) -> Firing | None:
        """The due timer's firing if this replica took it; a yearly moment is armed again
        for its next year in the same step, whether it then fires or is skipped as stale."""
        body = await self.redis.hget(self.keys.timer, key)
        index = self.keys.timers_of(kinds.timer_identifier(key))
        if body is None:
            await self.redis.zrem(self.keys.due, key)  # its firing is gone: nothing to fire
            return None
        firing = timers.decode(body)
        rule = self.rules.named(firing.rule)
        then = None
        if rule is not None:
            firing = kinds.yearly(rule, firing, self.config.default_time_zone, key)
            if firing.day:
                then = kinds.next_year(rule, key, firing, now, self.config.default_time_zone)
        if not await self.timers.take(key, body, now, index, then):
            return None
        if then is not None:
            self.stats["rearmed"] += 1
        return firing

    # --- firing -------------------------------------------------------------------------------

    async def _subject(self, customer: tuple[int, str]) -> str:
        """The pseudonym of the customer's canonical id; empty when no profile is known."""
        ref = common_pb2.CustomerRef(kind=customer[0], value=customer[1])  # type: ignore[arg-type]
        try:
            response = await self.stubs.profile.GetProfile(
                profile_pb2.GetProfileRequest(customer=ref), timeout=self.config.decide_timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise Retry from error
        return pseudonymise(response.profile.customer_id) if response.found else ""

    async def fire(self, firing: Firing) -> str:
        """Decides for one firing and publishes the action; returns what happened."""
        outcome = await self._fire(firing)
        self.stats[outcome] += 1
        log.info(
            "trigger",
            extra={"rule": firing.rule, "outcome": outcome, "event_id": firing.trigger_event_id},
        )
        return outcome

    async def _fire(self, firing: Firing) -> str:
        rule = self.rules.named(firing.rule)
        if rule is None:
            return "skipped.unknown_rule"
        subject = await self._subject(firing.customer)
        if not subject:
            return "skipped.unknown_customer"
        if rule.promotion and await self.redis.exists(f"{self._p}:cool:{subject}"):
            return "skipped.cooldown"
        window: int | str = int(firing.at.timestamp() // max(1.0, rule.window.total_seconds()))
        remembered_s = max(1, int(rule.window.total_seconds())) * 2
        if firing.year:
            # A yearly moment fires once per customer, rule, moment and year, wherever in the
            # year: a rule covering birthday and anniversary honours both days.
            window = erasure.year_window(firing.year, firing.moment)
            remembered_s = erasure.year_dedup_s(rule)
            if firing.moment and await self._fired_in_older_window(subject, rule, firing):
                return "skipped.dedup"
        dedup = self.keys.dedup(subject, rule.name, window)
        if not await self.redis.set(dedup, "1", nx=True, ex=remembered_s):
            return "skipped.dedup"
        # A backlog after an outage must not flood one customer: at most N per window.
        per = max(1.0, self.config.firing_window_s)
        count_key = f"{self._p}:count:{subject}:{int(firing.at.timestamp() // per)}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(count_key)
            pipe.expire(count_key, int(per * 2))
            count, _ = await pipe.execute()
        if int(count) > self.config.max_firings:
            return "skipped.customer_limit"
        try:
            response = await self._decide(rule, firing)
        except Retry:
            await self.redis.delete(dedup)
            await self.redis.decr(count_key)
            raise
        if response.fallback or not response.offer.offer_id:
            return "skipped.no_offer"
        channel = _CHANNEL_NAMES.get(response.channel, "")
        if channel not in {c.value for c in rule.channels}:
            return "skipped.no_offer"
        decided = self.clock()
        send_at = max(response.send_at.ToDatetime(tzinfo=UTC), decided)
        expires = decided + rule.expires
        if send_at >= expires:
            return "skipped.expired"
        if not await self._publish(rule, firing, subject, response, channel, send_at, expires):
            return "skipped.erased"
        return "fired"

    async def _fired_in_older_window(self, subject: str, rule: Rule, firing: Firing) -> bool:
        """Whether an older dedup key, one per customer, rule and year for all of the rule's
        moments, stands for this moment: it was written on this moment's day. Without this,
        the day's gesture sent before an upgrade would go out again when the day's event is
        sent again after it; a key from another day (the other moment) does not count."""
        older = self.keys.dedup(subject, rule.name, erasure.year_window(firing.year))
        ttl = await self.redis.ttl(older)
        if ttl < 0:  # absent (the engine writes none without a TTL)
            return False
        # The key's TTL was the rule's dedup lifetime when it was written.
        written = self.clock() - timedelta(seconds=erasure.year_dedup_s(rule) - ttl)
        tz = zoneinfo.ZoneInfo(self.config.default_time_zone)
        return written.astimezone(tz).date() == firing.at.astimezone(tz).date()

    async def _decide(self, rule: Rule, firing: Firing) -> decision_pb2.DecideResponse:
        request = decision_pb2.DecideRequest(
            customer=common_pb2.CustomerRef(
                kind=firing.customer[0],  # type: ignore[arg-type]
                value=firing.customer[1],
            ),
            touchpoint=common_pb2.TOUCHPOINT_TRIGGER,
            store_id=firing.store_id,
            allowed_channels=[_CHANNELS[c.value] for c in rule.channels if c.value in _CHANNELS],
            request_id=f"trigger:{rule.name}:{firing.trigger_event_id}",
            device="trigger",
            moment=decision_pb2.Moment(
                rule=rule.name,
                kind=rule.kind,
                trigger_event_id=firing.trigger_event_id,
                offer_ids=list(rule.offers),
                categories=list(firing.categories or rule.categories),
                store_offers=rule.store_offers,
            ),
        )
        request.request_time.FromDatetime(self.clock())
        if firing.location is not None:
            request.location.latitude, request.location.longitude = firing.location
        try:
            return await self.stubs.decision.Decide(request, timeout=self.config.decide_timeout_s)
        except grpc.aio.AioRpcError as error:
            log.warning("trigger engine: Decide failed", extra={"grpc_status": error.code().name})
            raise Retry from error

    async def _publish(
        self,
        rule: Rule,
        firing: Firing,
        subject: str,
        response: decision_pb2.DecideResponse,
        channel: str,
        send_at: datetime,
        expires: datetime,
    ) -> bool:
        """Appends the outbound action; False, appending nothing, when the recipient was
        erased since the firing's events were recorded."""
        kind, value = firing.customer
        fields = {
            "event_id": response.event_id,
            "rule": rule.name,
            "kind": rule.kind,
            "trigger_event_id": firing.trigger_event_id,
            "customer": subject,
            # Whom the delivery system addresses: the identifier the triggering event named.
            "recipient": f"{IdentifierKind(kind).slug}:{value}",
            "offer_id": response.offer.offer_id,
            "title": response.offer.title,
            "channel": channel,
            "send_at": send_at.isoformat(),
            "expires_at": expires.isoformat(),
            "store_id": firing.store_id,
            "model_version": response.model_version,
        }
        # With the entry, atomically, the customer's index of entries: an erasure deletes
        # them (they name the recipient) without scanning the stream.
        published = await erasure.publish_outbound(
            self.redis,
            self.config.outbound_stream,
            self.config.outbound_maxlen,
            self.keys.outbound_of(subject),
            self.keys.erased(erasure.identifier_pseudonym(kind, value)),
            firing.recorded_ms,
            fields,
        )
        return published is not None


def _recorded_at(timer: Timer, recorded_ms: int) -> Timer:
    """The timer with its firing stamped with when its events were recorded."""
    return dataclasses.replace(
        timer, firing=dataclasses.replace(timer.firing, recorded_ms=recorded_ms)
    )
