"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancels until the task is done: on Python 3.11 `asyncio.wait_for`, which redis-py
    uses for socket timeouts, can swallow a cancellation that meets a finishing command."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


async def finish(task: asyncio.Task[None], timeout_s: float) -> bool:
    """Waits for a task told to stop; cancels it after `timeout_s`. True if it ended by itself."""
    done, _ = await asyncio.wait([task], timeout=timeout_s)
    if not done:
        await cancel(task)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
    return bool(done)
