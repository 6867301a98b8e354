"""The learner's loop: read both streams, join, train, checkpoint and publish, exactly once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis

from emma.decision.decision_log import ACTIVATION
from emma.decision.log_line import line_of
from emma.learner.config import LearnerConfig
from emma.learner.join import (
    Aggregation,
    DecisionEntry,
    Finished,
    Join,
    OutcomeEntry,
    Update,
    entry_ms,
)
from emma.learner.lease import Lease, LeaseLost
from emma.learner.snapshots import META, Snapshot, read_snapshot
from emma.learner.streams import Entry, Streams
from emma.learner.trainer import Agreement, Trainer

log = logging.getLogger(__name__)

# Seconds before a learner that failed (Redis down, lease lost) starts over.
RETRY_S = 1.0
# Why it started over (`Learner.restarts`, the metric emma.learner.restarts).
RESTART_LEASE = "lease_lost"
RESTART_REDIS = "redis"
RESTART_ERROR = "error"


def decision_entry(entry_id: str, fields: dict[str, str]) -> DecisionEntry:
    """The join's view of a decision-log entry; raises ValueError when it is not one."""
    event_id = fields.get("event_id", "")
    if not event_id:
        raise ValueError("no event_id")
    actions = fields.get("actions")
    # Entries written before the count was logged: the fallback is the one-action kind.
    fallback_count = 1 if fields.get("fallback") == "1" else 2
    count = fallback_count if actions is None else int(actions)
    return DecisionEntry(entry_id, event_id, fields.get("deferred") == "1", count)


def outcome_entry(entry_id: str, fields: dict[str, str]) -> OutcomeEntry:
    """The join's view of a reward-stream entry; raises ValueError when it is not one."""
    event_id = fields.get("event_id", "")
    if not event_id:
        raise ValueError("no event_id")
    if fields.get("type") == ACTIVATION:
        return OutcomeEntry(entry_id, event_id, activation=True)
    body = json.loads(fields.get("json", "{}"))
    value = float(body.get("v", 0.0))
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("reward value is not finite")
    return OutcomeEntry(entry_id, event_id, False, value, fields.get("key", ""))


class Learner:
    """Owns the model while it holds the lease; everything else is rebuilt from Redis."""

    def __init__(
        self,
        config: LearnerConfig,
        client: aioredis.Redis,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.client = client
        self.clock = clock
        self.streams = Streams(
            client,
            config.decision_stream,
            config.reward_stream,
            config.group,
            config.consumer,
            config.batch,
        )
        self.lease = Lease(
            client, f"{config.model_key}:lease", config.lease_s, config.consumer, clock
        )
        self.recovered = asyncio.Event()
        self._stopping = asyncio.Event()
        self._trainer: Trainer | None = None
        # Times this process started over from the checkpoint, by reason (kept across them).
        self.restarts: collections.Counter[str] = collections.Counter()
        self._reset()

    def _reset(self) -> None:
        if self._trainer is not None:
            self._trainer.close()
        self._trainer = None
        self.join = Join(
            self.config.reward_window_s,
            Aggregation(self.config.aggregation),
            self.config.default_reward,
            grace_s=self.config.outcome_grace_s,
            held_max=self.config.held_outcomes_max,
        )
        self.version = 0
        self.base_updates = 0
        self.counts: collections.Counter[str] = collections.Counter()
        self.decision_acks: list[str] = []
        self.outcome_acks: list[str] = []
        self.unpublished = 0
        self.last_publish = self.clock()
        self.behind_ms = 0
        self._idle = False
        self.recovered.clear()

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            raise RuntimeError("the learner has not recovered its checkpoint yet")
        return self._trainer

    @property
    def updates(self) -> int:
        """Updates the model has learned since it was first created."""
        return self.base_updates + (self._trainer.updates if self._trainer else 0)

    async def run(self) -> None:
        """Learns until stopped; on any failure starts over from the checkpoint and the PEL."""
        while not self._stopping.is_set():
            try:
                if not await self._hold_lease():
                    return
                await self.recover()
                while not self._stopping.is_set():
                    await self.step()
                await self.publish(force=True)
                await self.lease.release()
                return
            except (redis.RedisError, LeaseLost, OSError) as error:
                self.restarts[RESTART_LEASE if isinstance(error, LeaseLost) else RESTART_REDIS] += 1
                log.warning(
                    "learner starts over from its checkpoint",
                    extra={"error": f"{type(error).__name__}: {error}"},
                )
            except Exception:
                # A bug must not leave a process that looks healthy but learns nothing.
                self.restarts[RESTART_ERROR] += 1
                log.exception("learner failed; starting over from its checkpoint")
            self._reset()
            await self._sleep(RETRY_S)

    async def stop(self) -> None:
        """Ends the loop after its current step; the final checkpoint is written by run()."""
        self._stopping.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _hold_lease(self) -> bool:
        waiting_logged = False
        while not self._stopping.is_set():
            if await self.lease.acquire():
                return True
            if not waiting_logged:
                log.info("another learner is active; waiting", extra={"lease": self.lease.key})
                waiting_logged = True
            await self._sleep(self.config.lease_s / 2)
        return False

    async def recover(self) -> None:
        """Loads the checkpoint, then replays what it has not learned: the pending entries."""
        await self.streams.ensure_groups()
        snapshot = await read_snapshot(self.client, self.config.model_key)
        agreement = Agreement(self.config.apprentice_window, self.config.apprentice_threshold)
        if snapshot is not None:
            self.version = snapshot.version
            self.base_updates = int(snapshot.meta.get("updates", 0))
            self.counts.update(snapshot.meta.get("counts", {}))
            agreement.restore(snapshot.meta.get("agreement", {}))
        data = snapshot.data if snapshot is not None else None
        self._trainer = await asyncio.to_thread(Trainer, self.config.vw_args, agreement, data)
        claimed = await self.streams.claim()
        keep = self.lease.keep
        decisions = await self.streams.read_all(self.config.decision_stream, "0", keep)
        outcomes = await self.streams.read_all(self.config.reward_stream, "0", keep)
        # Decisions not yet delivered may be those of pending rewards: read them first.
        decisions += await self.streams.read_all(self.config.decision_stream, before_page=keep)
        finished = self._apply(decisions, outcomes)
        await self._learn(finished)
        self.recovered.set()
        log.info(
            "learner recovered",
            extra={
                "model_version": snapshot.name if snapshot else "cold",
                "updates": self.base_updates,
                "pending_decisions": len(self.join),
                "held_outcomes": self.join.held,
                "pending_outcomes": len(outcomes),
                "claimed": claimed,
            },
        )

    async def step(self) -> None:
        """One round: new rewards, then every new decision, join, close windows, learn."""
        await self.lease.keep()
        now_ms = await self.streams.time_ms()
        outcomes = await self.streams.read(
            self.config.reward_stream, block_ms=self.config.block_ms if self._idle else None
        )
        # Read after the rewards: a reward's decision was logged before it, so every
        # reward just read finds its decision among those read by now, unless a replica
        # wrote the decision late from its buffer: then the reward is held for it.
        decisions = await self.streams.read_all(
            self.config.decision_stream, before_page=self.lease.keep
        )
        finished = self._apply(decisions, outcomes)
        # Every reward before `seen_ms` has been read; windows ending before it can close.
        seen_ms = now_ms if len(outcomes) < self.config.batch else entry_ms(outcomes[-1][0])
        finished.extend(self.join.close(seen_ms))
        # Every decision logged before `now_ms` has been read (after taking it): an outcome
        # whose grace ended before it has no decision to wait for.
        finished.extend(self.join.expire(now_ms))
        await self._learn(finished)
        if outcomes:
            self.behind_ms = max(0, now_ms - entry_ms(outcomes[-1][0]))
        self._idle = not outcomes and not decisions
        await self.publish()

    def _apply(self, decisions: list[Entry], outcomes: list[Entry]) -> Finished:
        finished = Finished()
        for entry_id, fields in decisions:
            try:
                if fields is None:
                    raise ValueError("trimmed from the stream")
                finished.extend(self.join.decision(decision_entry(entry_id, fields)))
            except (ValueError, TypeError) as error:
                self._skip(finished.decision_acks, entry_id, "decision", error)
        for entry_id, fields in outcomes:
            try:
                if fields is None:
                    raise ValueError("trimmed from the stream")
                finished.extend(self.join.outcome(outcome_entry(entry_id, fields)))
            except (ValueError, TypeError) as error:
                self._skip(finished.outcome_acks, entry_id, "outcome", error)
        return finished

    def _skip(self, acks: list[str], entry_id: str, kind: str, error: Exception) -> None:
        acks.append(entry_id)
        self.counts["unreadable"] += 1
        log.warning(f"{kind} entry skipped", extra={"entry_id": entry_id, "error": str(error)})

    async def _learn(self, finished: Finished) -> None:
        # A batch at a time, keeping the lease between batches: after a restart or an
        # outage the windows of thousands of decisions may close at once, and learning
        # them can take longer than the lease lasts.
        updates = finished.updates
        for start in range(0, len(updates), self.config.batch):
            await self.lease.keep()
            part = updates[start : start + self.config.batch]
            lines = await self._lines(part)
            # VW's work runs in a thread, so health checks are answered meanwhile.
            skipped = await asyncio.to_thread(self.trainer.learn_all, lines) if lines else 0
            self.unpublished += len(lines) - skipped
            self.counts.update({"unreadable": skipped, "expired": len(part) - len(lines)})
        self.counts.update(finished.counts)
        self.decision_acks.extend(finished.decision_acks)
        self.outcome_acks.extend(finished.outcome_acks)

    async def _lines(self, updates: list[Update]) -> list[tuple[dict[str, Any], float]]:
        """The logged lines of the decisions to learn, with their rewards, in update order."""
        found = await self.streams.fetch([update.entry_id for update in updates])
        lines = []
        for update in updates:
            fields = found.get(update.entry_id)
            if fields is None:
                # Trimmed before its window closed: EMMA_STREAM_MAXLEN is too small.
                log.warning("decision trimmed before learning", extra={"event_id": update.event_id})
                continue
            try:
                lines.append((line_of(fields), update.reward))
            except ValueError:
                self.counts["unreadable"] += 1
        return lines

    def _due(self) -> bool:
        if self.unpublished >= self.config.publish_updates:
            return True
        elapsed = self.clock() - self.last_publish >= self.config.publish_interval_s
        return elapsed and bool(self.unpublished or self.decision_acks or self.outcome_acks)

    def meta(self) -> dict[str, Any]:
        oldest = self.join.oldest_ms()
        return {
            "version": self.version,
            "published_ms": int(time.time() * 1000),
            "updates": self.updates,
            "vw_args": self.config.vw_args,
            "aggregation": self.config.aggregation,
            "window_s": self.config.reward_window_s,
            "default_reward": self.config.default_reward,
            "counts": {name: count for name, count in self.counts.items() if count},
            "agreement": self.trainer.agreement.state(),
            "open_decisions": len(self.join),
            "oldest_open_ms": oldest,
            "held_outcomes": self.join.held,
            "behind_ms": self.behind_ms,
        }

    async def publish(self, force: bool = False) -> bool:
        """Checkpoints when due: the model and the acknowledgement of everything it learned,
        in one transaction, so Redis never holds one without the other."""
        pending = self.unpublished or self.decision_acks or self.outcome_acks
        if not (self._due() or (force and pending)):
            return False
        snapshot = None
        if self.unpublished:
            data = await asyncio.to_thread(self.trainer.snapshot)
            self.version += 1
            snapshot = Snapshot(self.version, data, self.meta())
        sent = self.clock()
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                await pipe.watch(self.lease.key)
                if await pipe.get(self.lease.key) != self.lease.owner.encode():
                    raise LeaseLost("the lease was taken before the checkpoint")
                pipe.multi()  # type: ignore[no-untyped-call]
                if snapshot is not None:
                    pipe.hset(self.config.model_key, mapping=snapshot.fields())  # type: ignore[arg-type]
                elif self.version:
                    # Only outcomes that teach nothing: the model stands, its counts move on.
                    pipe.hset(self.config.model_key, META, json.dumps(self.meta()))
                if self.decision_acks:
                    pipe.xack(self.config.decision_stream, self.config.group, *self.decision_acks)
                if self.outcome_acks:
                    pipe.xack(self.config.reward_stream, self.config.group, *self.outcome_acks)
                pipe.pexpire(self.lease.key, self.lease.ttl_ms)
                await pipe.execute()
        except redis.WatchError as error:
            raise LeaseLost("the lease changed during the checkpoint") from error
        self.lease.renewed(sent)
        self.decision_acks, self.outcome_acks = [], []
        self.unpublished = 0
        self.last_publish = self.clock()
        if snapshot is not None:
            log.info(
                "model published",
                extra={
                    "model_version": snapshot.name,
                    "updates": self.updates,
                    "open_decisions": len(self.join),
                    "agreement": round(self.trainer.agreement.rate, 3),
                },
            )
        return True
