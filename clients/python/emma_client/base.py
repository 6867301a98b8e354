"""What the synchronous and the asyncio client share: settings and per-call options."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

DEFAULT_DEADLINE_S = 2.0
# The timeout given to each call, in ms: the decision service counts a decision's budget
# from when the call was started here, not from when it reached its handler.
CALL_TIMEOUT_HEADER = "emma-call-timeout-ms"
# More connections than this to one address are more likely a mistake than a need.
MAX_CONNECTIONS = 64

T = TypeVar("T")


class Turns(Generic[T]):
    """Items used in turn, one per call: calls spread over a client's connections. Safe
    from several threads (a C iterator's step holds the GIL)."""

    def __init__(self, items: Sequence[T]) -> None:
        self.items = tuple(items)
        self._cycle = itertools.cycle(self.items)

    def next(self) -> T:
        return next(self._cycle)


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
