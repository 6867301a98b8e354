"""within(): the caller leaves at the timeout even when the call is slow to cancel."""

from __future__ import annotations

import asyncio
import time

import pytest

from emma.runtime.deadline import within


class SlowToCancel:
    """A call that, once cancelled, takes `cleanup_s` to clean up (a Redis connection)."""

    def __init__(self, cleanup_s: float) -> None:
        self.cleanup_s = cleanup_s
        self.cleaned = asyncio.Event()

    async def __call__(self) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.sleep(self.cleanup_s))
            self.cleaned.set()
            raise
        return "late"


async def test_the_result_of_a_call_in_time() -> None:
    async def quick() -> int:
        return 7

    assert await within(quick(), 1.0) == 7


async def test_the_error_of_a_call_in_time() -> None:
    async def failing() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await within(failing(), 1.0)


async def test_a_call_slow_to_cancel_does_not_hold_the_caller() -> None:
    call = SlowToCancel(cleanup_s=0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(call(), 0.02)
    # The caller left at the timeout, long before the clean-up ended ...
    assert time.monotonic() - started < 0.2
    assert not call.cleaned.is_set()
    # ... and the call was cancelled and cleaned up on its own.
    await asyncio.wait_for(call.cleaned.wait(), 2.0)


async def test_asyncio_timeout_alone_would_wait_for_the_clean_up() -> None:
    call = SlowToCancel(cleanup_s=0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02):
            await call()
    assert time.monotonic() - started >= 0.2


async def test_a_cancelled_caller_leaves_at_once_and_its_call_is_cancelled() -> None:
    call = SlowToCancel(cleanup_s=0.3)
    caller = asyncio.ensure_future(within(call(), 5.0))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert time.monotonic() - started < 0.2
    await asyncio.wait_for(call.cleaned.wait(), 2.0)


async def test_no_time_left_is_a_timeout() -> None:
    async def call() -> str:
        await asyncio.sleep(10)
        return "late"

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(call(), 0.0)
    assert time.monotonic() - started < 0.2
