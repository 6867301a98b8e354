"""Writes that Redis could not take, held in memory and written again, in order, once it answers."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from emma.runtime.spool import Spool

log = logging.getLogger(__name__)

T = TypeVar("T")

# Items written per attempt while catching up.
BATCH = 25
# One attempt may take this long; a batch that did not finish stays held and is tried again,
# so a writer must tolerate an item written twice (an event id or a key the reader dedups).
WRITE_TIMEOUT_S = 1.0


class WriteBehind(Generic[T]):
    """A bounded, ordered buffer in front of a store that is away for a while.

    `keep` takes an item whose write failed; a task of the buffer's own writes the kept
    items, oldest first and `batch` at a time, as soon as the store answers again, with a
    backoff between `retry_s` meanwhile. While Redis was away at the last attempt, each
    attempt sends the oldest item alone: packing a whole batch for every attempt costs the
    event loop time that the requests being answered meanwhile wait for.

    Memory, and with a `spool` disk too: without one, what is still held when the process
    stops is lost and counted; with one, it is left in the spool, and `restore` at the next
    start takes it up again (items already written may be written twice: their readers
    drop repeats).
    """

    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[T]], Awaitable[object]],
        capacity: int,
        *,
        retry_s: tuple[float, float],
        batch: int = BATCH,
        write_timeout_s: float = WRITE_TIMEOUT_S,
        spool: Spool[T] | None = None,
    ) -> None:
        self.name = name
        self._spool = spool
        self._write = write
        self.capacity = capacity
        self.batch = batch
        self.write_timeout_s = write_timeout_s
        # The first and the longest delay between two attempts while the store does not answer.
        self.first_retry_s, self.last_retry_s = retry_s
        self._items: collections.deque[T] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # The last attempt failed: the store was away then.
        self._away = False
        # Set to cut a retry delay short; and replaced after each attempt, set when it ends.
        self._wake = asyncio.Event()
        self._attempted = asyncio.Event()
        self.written = 0
        # Items not taken (full, or closing), and items still held at shutdown (without a
        # spool; with one they are left to the next start).
        self.refused = 0
        self.lost = 0
        self.restored = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def dropped(self) -> int:
        """Items that never reached the store: refused, or lost at shutdown."""
        return self.refused + self.lost

    @property
    def waiting(self) -> bool:
        """Items wait for the store: a new item must queue behind them to keep the order."""
        return bool(self._items)

    def keep(self, item: T) -> bool:
        """Holds an item to be written later; False when refused (full, or closing)."""
        if self._closed or len(self._items) >= self.capacity:
            self.refused += 1
            return False
        self._items.append(item)
        if self._spool is not None:
            try:
                self._spool.append(item)
            except OSError as error:  # a full disk: the item is still held in memory
                log.warning("spool write failed", extra={"buffer": self.name, "error": str(error)})
        self._start()
        return True

    def restore(self, orphans: Sequence[Path] = ()) -> int:
        """At start: takes up what a previous process left in the spool, and in the
        `orphans` (spools no process will take up otherwise); returns how many items."""
        if self._spool is None:
            return 0
        for path in orphans:
            moved = self._spool.take_over(path)
            if moved:
                log.info(
                    "orphaned spool taken over",
                    extra={"buffer": self.name, "spool": path.name, "items": moved},
                )
        items = self._spool.items()
        self._items.extend(items)
        self.restored += len(items)
        if items:
            log.info("held writes restored", extra={"buffer": self.name, "restored": len(items)})
            self._start()
        return len(items)

    def _start(self) -> None:
        if self._task is None:
            # In a context of its own: catching up is not the work of the request that
            # happened to start it, whose trace would otherwise hold the whole outage.
            self._task = asyncio.create_task(
                self._drain(), name=f"emma.write_behind.{self.name}", context=contextvars.Context()
            )

    async def drained(self) -> None:
        """Returns once every held item is written (waits as long as the store is away)."""
        while (task := self._task) is not None:
            # Shielded: a caller giving up must not stop the writing.
            await asyncio.shield(task)

    async def settle(self, timeout_s: float) -> None:
        """Waits up to `timeout_s` for the held items to be written: at once when none
        wait; after one more attempt when the store was away (if it still is, the caller's
        own write fails as well, and it need not wait for the buffer)."""
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
            while self._items:
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
        """Writes the oldest items; they leave the buffer only once the store confirmed them."""
        batch = list(itertools.islice(self._items, 1 if self._away else self.batch))
        try:
            async with asyncio.timeout(self.write_timeout_s):
                await self._write(batch)
        except Exception as error:  # still away: keep everything, try again later
            if not self._away:  # once per outage, not at every retry
                log.warning(
                    "store unavailable, writes held",
                    extra={
                        "buffer": self.name,
                        "error": type(error).__name__,
                        "held": len(self._items),
                    },
                )
            self._away = True
            return False
        self._away = False
        # Only this task removes items and keep() only appends: the head is still `batch`.
        for _ in batch:
            self._items.popleft()
        self.written += len(batch)
        if not self._items:
            # No await since the check: nothing kept meanwhile, the spool holds only these.
            if self._spool is not None:
                self._spool.clear()
            log.info("held writes caught up", extra={"buffer": self.name, "written": self.written})
        return True

    async def close(self, timeout_s: float) -> int:
        """Graceful shutdown: writes what is held within `timeout_s`; returns how many
        items are lost (left without a spool) and refuses new ones."""
        self._closed = True
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        delay = self.first_retry_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self._items:
                    if not await self._write_batch():
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self.last_retry_s)
        left = len(self._items)
        if self._spool is not None:
            if left:
                log.warning(
                    "held writes left in the spool for the next start",
                    extra={"buffer": self.name, "left": left},
                )
            self._spool.close()
            self._items.clear()
            return 0
        if left:
            log.warning("held writes lost at shutdown", extra={"buffer": self.name, "lost": left})
            self.lost += left
            self._items.clear()
        return left
