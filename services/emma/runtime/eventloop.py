"""The event loop a process runs on: uvloop when installed (EMMA_EVENT_LOOP), else asyncio's."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

ENV = "EMMA_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")


def loop_name(choice: str | None = None) -> str:
    """The loop `run` will use: `uvloop` or `asyncio`; `auto` is uvloop when it is installed."""
    choice = (choice or os.environ.get(ENV) or "auto").strip().lower()
    if choice not in CHOICES:
        raise ValueError(f"{ENV}={choice!r}: expected one of {list(CHOICES)}")
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if choice == "uvloop":
            raise ValueError(f"{ENV}=uvloop but uvloop is not installed") from None
        return "asyncio"
    return "uvloop"


def loop_factory(choice: str | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for asyncio.Runner; None means asyncio's default loop."""
    if loop_name(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, T], choice: str | None = None) -> T:
    """Like asyncio.run, on the configured loop (uvloop answers gRPC calls with less overhead)."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
