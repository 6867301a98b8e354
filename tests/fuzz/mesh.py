"""The real profile, context and decision servers on loopback, served from a background thread.

The fuzz tests are synchronous (hypothesis drives them) and call the servers with blocking
stubs; the servers run on their own event loop in a thread, exactly as built for
production apart from a frozen profile clock (so that replaying batches is repeatable)
and settings that keep the decision service from writing on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from emma.context import server as context_server
from emma.context.config import ContextConfig
from emma.decision import server as decision_server
from emma.decision.config import DecisionConfig
from emma.profile.config import ProfileConfig
from emma.profile.outbox import Outbox
from emma.profile.server import SERVICE_NAME as PROFILE_SERVICE
from emma.profile.service import ProfileServicer
from emma.profile.store import ProfileStore
from emma.profile.v1 import profile_pb2_grpc
from emma.profile.wallet import Wallet
from emma.runtime.redis_client import connect_any_redis
from emma.runtime.server import EmmaServer, create_server

T = TypeVar("T")

# The profile service's clock: fixed, so a batch applied twice to the same state leaves the
# same state (decays and landmarks depend on "now").
PROFILE_NOW = datetime.now(UTC).replace(microsecond=0)


@dataclasses.dataclass
class Addresses:
    profile: str
    context: str
    decision: str


def _profile_server(config: ProfileConfig, clock: Callable[[], datetime]) -> tuple[EmmaServer, int]:
    """emma.profile.server.build_server with a fixed clock."""
    server, port = create_server(config.host, config.port, [PROFILE_SERVICE])
    client = connect_any_redis(config.redis_url)
    store = ProfileStore(client, config)
    outbox = Outbox(client, config.events_stream, config.events_stream_maxlen)
    wallet = Wallet(client, config.key_prefix, timedelta(days=config.wallet_days))
    servicer = ProfileServicer(store, config, clock, outbox=outbox, wallet=wallet)
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server.grpc_server)
    server.on_stop(store.close)
    return server, port


class Mesh:
    """Starts the three servers on free ports; `stop` shuts them down and ends the thread."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[EmmaServer] = []
        self.addresses: Addresses | None = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> Addresses:
        self._thread.start()
        self.addresses = self.run(self._start())
        return self.addresses

    async def _start(self) -> Addresses:
        profile_config = dataclasses.replace(ProfileConfig(), redis_url=self.redis_url, port=0)
        profile, profile_port = _profile_server(profile_config, lambda: PROFILE_NOW)
        context, context_port = context_server.build_server(
            dataclasses.replace(ContextConfig(), port=0)
        )
        decision_config = dataclasses.replace(
            DecisionConfig(),
            port=0,
            redis_url=self.redis_url,
            profile_addr=f"127.0.0.1:{profile_port}",
            context_addr=f"127.0.0.1:{context_port}",
            # Generous, so that a busy machine answers from the real dependencies.
            budget_ms=5_000.0,
            log_timeout_ms=5_000.0,
            # Nothing may write to Redis but the calls under test: no erasure consumer on
            # the profile events, no catalog reloads.
            profile_events_stream="",
            catalog_poll_s=0.0,
            model_poll_s=3_600.0,
        )
        decision, decision_port = decision_server.build_server(decision_config)
        for server in (profile, context, decision):
            await server.start()
            self._servers.append(server)
        return Addresses(
            f"127.0.0.1:{profile_port}", f"127.0.0.1:{context_port}", f"127.0.0.1:{decision_port}"
        )

    def stop(self) -> None:
        async def stop_all() -> None:
            for server in reversed(self._servers):
                await server.stop(0)

        try:
            self.run(stop_all())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
