"""What the synchronous and the asyncio client share: settings and per-call options."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

DEFAULT_DEADLINE_S = 2.0
# The timeout given to each call, in ms: the decision service counts a decision's budget
# from when the call was started here, not from when it reached its handler.
CALL_TIMEOUT_HEADER = "emma-call-timeout-ms"
# More connections than this to one address are more likely a mistake than a need.
MAX_CONNECTIONS = 64

T = TypeVar("T")


class LeastBusy(Generic[T]):
    """A client's connections (or what calls through them); each call takes the one with
    the fewest calls in flight, ties in turn. Safe from several threads.

    A server's worker processes share its port, and the kernel gives each new connection
    to one of them at random: four connections may well land three on one worker and one
    on the other. Taking turns would then send three quarters of the calls to one worker
    whatever its queue; the least busy connection sends the next call where the answers
    come back soonest, so a worker that falls behind gets fewer calls until it catches up.
    """

    def __init__(self, items: Sequence[T]) -> None:
        if not items:
            raise ValueError("no connection to use")
        self.items = tuple(items)
        count = len(self.items)
        self._busy = [0] * count
        # Where each turn starts its search, so that ties go round.
        self._orders = itertools.cycle(
            [list(range(start, count)) + list(range(start)) for start in range(count)]
        )
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def use(self) -> Iterator[T]:
        """The least busy item, counted as busy until the block ends."""
        if len(self.items) == 1:
            yield self.items[0]
            return
        busy = self._busy
        with self._lock:
            chosen = min(next(self._orders), key=busy.__getitem__)
            busy[chosen] += 1
        try:
            yield self.items[chosen]
        finally:
            with self._lock:
                busy[chosen] -= 1

    def in_flight(self) -> list[int]:
        """Calls in flight on each item, in order."""
        with self._lock:
            return list(self._busy)


class ClientSettings:
    """The address, default deadline, wait-for-ready choice and number of connections of
    a client, validated."""

    def __init__(
        self,
        address: str,
        deadline: float,
        wait_for_ready: bool,
        token: str | None = None,
        connections: int = 1,
    ) -> None:
        if deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds, got {deadline}")
        if not 1 <= connections <= MAX_CONNECTIONS:
            raise ValueError(f"connections must be 1..{MAX_CONNECTIONS}, got {connections}")
        if token is not None and (not token or token != token.strip() or " " in token):
            raise ValueError("token must be non-empty and without spaces")
        self.address = address
        self.deadline = deadline
        self.wait_for_ready = wait_for_ready
        self.connections = connections
        # Sent as metadata, not as call credentials: those need TLS, and a service behind a
        # TLS-terminating proxy still checks the token.
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )

    def _call_options(self, deadline: float | None) -> dict[str, Any]:
        """gRPC call options: the call's own deadline, else the client's default, also sent
        as metadata (CALL_TIMEOUT_HEADER)."""
        timeout = deadline or self.deadline
        return {
            "timeout": timeout,
            "wait_for_ready": self.wait_for_ready,
            "metadata": (*self._metadata, (CALL_TIMEOUT_HEADER, f"{timeout * 1000:.0f}")),
        }
