"""The real profile, context and decision servers in this process, on their own event loop.

A thread of their own lets the synchronous SDK block on calls without blocking the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from emma.context.config import ContextConfig
from emma.context.server import build_server as build_context
from emma.decision.config import DecisionConfig
from emma.decision.server import build_server as build_decision
from emma.profile.config import ProfileConfig
from emma.profile.server import build_server as build_profile
from emma.runtime.config import load_config
from emma.runtime.redis_server import RedisServer, free_port
from emma.runtime.server import EmmaServer


class InProcessStack:
    """Starts the three services on free ports; `decision_address` is what the SDK dials.

    With `dependencies_down` only the decision service starts, its profile store and its
    profile and context services pointing at ports where nothing listens: every answer is
    degraded.
    """

    def __init__(self, redis_url: str, dependencies_down: bool = False) -> None:
        self.redis_url = redis_url
        self.dependencies_down = dependencies_down
        self.decision_address = ""
        self.profile_address = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[EmmaServer] = []

    def _run(self, make: Callable[[], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=30)

    async def _start(self) -> None:
        common = {"EMMA_REDIS_URL": self.redis_url}
        profile, profile_port = build_profile(
            load_config(ProfileConfig, [], {**common, "EMMA_PROFILE_PORT": "0"})
        )
        context, context_port = build_context(
            load_config(ContextConfig, [], {"EMMA_CONTEXT_PORT": "0"})
        )
        self.profile_address = f"127.0.0.1:{profile_port}"
        context_address = f"127.0.0.1:{context_port}"
        if self.dependencies_down:
            self.profile_address = context_address = f"127.0.0.1:{free_port()}"
            common["EMMA_PROFILE_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        decision, decision_port = build_decision(
            load_config(
                DecisionConfig,
                [],
                {
                    **common,
                    "EMMA_DECISION_PORT": "0",
                    "EMMA_PROFILE_ADDR": self.profile_address,
                    "EMMA_CONTEXT_ADDR": context_address,
                    # Generous: the first calls open connections on a possibly busy machine.
                    "EMMA_DECISION_BUDGET_MS": "2000",
                },
            )
        )
        self.decision_address = f"127.0.0.1:{decision_port}"
        self._servers = [decision] if self.dependencies_down else [profile, context, decision]
        for server in self._servers:
            await server.start()

    async def _stop(self) -> None:
        for server in reversed(self._servers):
            await server.stop(0)

    def start(self) -> InProcessStack:
        self._thread.start()
        self._run(self._start)
        return self

    def stop(self) -> None:
        try:
            self._run(self._stop)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


@contextlib.contextmanager
def running_stack(dependencies_down: bool = False) -> Iterator[InProcessStack]:
    """The stack on a Redis of its own: its data never leaks into other tests' shared Redis."""
    with RedisServer() as redis:
        stack = InProcessStack(redis.url, dependencies_down).start()
        try:
            yield stack
        finally:
            stack.stop()
