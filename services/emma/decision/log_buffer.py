"""Decision-log entries whose write failed, held in memory and written again, in order."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import itertools
import logging
from collections.abc import Sequence
from typing import Protocol

from emma.decision.decision_log import EncodedDecision, LoggedDecision

log = logging.getLogger(__name__)

# Entries written per round trip while catching up. Packing one cost about 70 us of the
# event loop's time when entries held their line uncompressed (13 KB at 50 actions; about
# 4 KB now), so a batch holds Decide up by at most about 2 ms.
BATCH = 25
# One catching-up round trip may take this long; a batch that did not finish stays buffered.
WRITE_TIMEOUT_S = 1.0
# Retry delays while Redis does not answer: short, because an outcome (Reward, Activate)
# that another replica writes before this one's entry joins nothing in the learner, and a
# refused connection costs little. (Outcomes sent to this replica wait for it: settle.)
FIRST_RETRY_S = 0.01
LAST_RETRY_S = 0.05


class EntryLog(Protocol):
    """What the buffer writes through (emma.decision.decision_log.DecisionStore)."""

    def encode(self, decision: LoggedDecision) -> EncodedDecision: ...

    async def append_encoded(self, entries: Sequence[EncodedDecision]) -> None: ...


class LogBuffer:
    """A bounded buffer in front of the decision log, used only when a write failed.

    `keep` takes an entry whose write failed or timed out; a background task writes the
    kept entries, oldest first, as soon as Redis answers again, with backoff meanwhile.
    While entries wait, new entries must be kept too (`waiting`), so the log stays in
    order. A timed-out write that Redis ran anyway is written a second time: the learner
    drops a repeated event id. When the buffer is full the entry is dropped, counted and
    reported to the caller, whose answer then says the decision log is degraded.

    Entries are kept encoded, and while Redis is away each attempt sends the oldest entry
    alone: encoding and packing a whole batch for every attempt took 13 ms of the event
    loop per attempt (100 entries), which Decide waited for while Redis restarted.
    """

    def __init__(
        self,
        store: EntryLog,
        capacity: int,
        *,
        batch: int = BATCH,
        write_timeout_s: float = WRITE_TIMEOUT_S,
        retry_s: tuple[float, float] = (FIRST_RETRY_S, LAST_RETRY_S),
    ) -> None:
        self._store = store
        self.capacity = capacity
        self.batch = batch
        self.write_timeout_s = write_timeout_s
        # The first and the longest delay between two attempts while Redis does not answer.
        self.first_retry_s, self.last_retry_s = retry_s
        self._entries: collections.deque[EncodedDecision] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # The last write failed: Redis was away at the last attempt.
        self._away = False
        # Set to cut a retry delay short; and replaced after each attempt, set when it ends.
        self._wake = asyncio.Event()
        self._attempted = asyncio.Event()
        self.dropped = 0
        self.written = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def waiting(self) -> bool:
        """Entries wait for Redis: a new entry must queue behind them."""
        return bool(self._entries)

    def keep(self, entry: LoggedDecision) -> bool:
        """Buffers an entry to be written later; False when it was dropped (buffer full)."""
        if self._closed or len(self._entries) >= self.capacity:
            self.dropped += 1
            return False
        self._entries.append(self._store.encode(entry))
        if self._task is None:
            # In a context of its own: catching up is not the work of the decision that
            # happened to start it, whose trace would otherwise hold the whole outage.
            self._task = asyncio.create_task(
                self._drain(), name="emma.decision.log_buffer", context=contextvars.Context()
            )
        return True

    async def drained(self) -> None:
        """Returns once every kept entry is written (waits as long as Redis is away)."""
        while (task := self._task) is not None:
            # Shielded: a caller giving up must not stop the writing.
            await asyncio.shield(task)

    async def settle(self, timeout_s: float) -> None:
        """Waits up to `timeout_s` for the kept entries to be written: at once when none
        wait; after one more attempt when Redis was away (if it still is, the caller's own
        write fails as well, and it need not wait for the buffer)."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                if self._away:
                    attempted = self._attempted
                    self._wake.set()
                    await attempted.wait()
                    if self._away:
                        return
                await self.drained()

    async def _drain(self) -> None:
        delay = self.first_retry_s
        try:
            while self._entries:
                written = await self._write_batch()
                self._attempted.set()
                self._attempted = asyncio.Event()
                if written:
                    delay = self.first_retry_s
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                self._wake.clear()
                delay = min(delay * 2, self.last_retry_s)
        finally:
            # No await between the empty check and here: keep() starts a new task if needed.
            self._task = None
            self._attempted.set()
            self._attempted = asyncio.Event()

    async def _write_batch(self) -> bool:
        """Writes the oldest entries; they leave the buffer only once Redis confirmed them.
        While Redis was away at the last attempt, the oldest alone tries whether it is back."""
        batch = list(itertools.islice(self._entries, 1 if self._away else self.batch))
        try:
            async with asyncio.timeout(self.write_timeout_s):
                await self._store.append_encoded(batch)
        except Exception as error:  # Redis still away: keep everything, try again later
            if not self._away:  # once per outage, not at every retry
                log.warning(
                    "decision log unavailable, entries buffered",
                    extra={"error": type(error).__name__, "buffered": len(self._entries)},
                )
            self._away = True
            return False
        self._away = False
        # Only this task removes entries and keep() only appends: the head is still `batch`.
        for _ in batch:
            self._entries.popleft()
        self.written += len(batch)
        if not self._entries:
            log.info("decision log caught up", extra={"written": self.written})
        return True

    async def close(self, timeout_s: float) -> int:
        """Graceful shutdown: writes what is buffered within `timeout_s`; returns how many
        entries are left (lost) and refuses new ones."""
        self._closed = True
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        delay = self.first_retry_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self._entries:
                    if not await self._write_batch():
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self.last_retry_s)
        left = len(self._entries)
        if left:
            log.warning("decision log entries lost at shutdown", extra={"entries": left})
            self.dropped += left
            self._entries.clear()
        return left
