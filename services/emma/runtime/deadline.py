"""Awaiting a call for at most a given time, without waiting for its clean-up after that."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


def _retrieve(task: asyncio.Future[Any]) -> None:
    # A call given up on may still fail while it cleans up; nobody is waiting for it.
    if not task.cancelled():
        task.exception()


def abandon(task: asyncio.Future[Any]) -> None:
    """Cancels a call nobody waits for any more and lets it clean up on its own."""
    if not task.done():
        task.cancel()
        task.add_done_callback(_retrieve)


async def within(call: Awaitable[T], timeout_s: float) -> T:
    """The call's result, or TimeoutError once `timeout_s` has passed.

    `asyncio.timeout` alone returns only when the cancelled call has finished cleaning up,
    and a Redis command cancelled mid-reply closes its connection first: against a Redis
    that is restarting that took tens of milliseconds past a Decide's budget. Here the call
    runs as its own task, awaited by `asyncio.wait`, which returns at the timeout without
    cancelling it, so the caller leaves on time and the call is cancelled and left to
    clean up on its own. (`asyncio.wait`'s timer costs a fraction of what `asyncio.timeout`
    and a shield cost: docs/performance.md.)
    """
    task = asyncio.ensure_future(call)
    try:
        await asyncio.wait((task,), timeout=timeout_s)
    except BaseException:  # the caller was cancelled
        abandon(task)
        raise
    if not task.done():
        abandon(task)
        raise TimeoutError
    return task.result()
