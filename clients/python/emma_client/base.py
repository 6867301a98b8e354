"""What the synchronous and the asyncio client share: settings and per-call options."""

from __future__ import annotations

from typing import Any

DEFAULT_DEADLINE_S = 2.0


class ClientSettings:
    """The address, default deadline and wait-for-ready choice of a client, validated."""

    def __init__(
        self, address: str, deadline: float, wait_for_ready: bool, token: str | None = None
    ) -> None:
        if deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds, got {deadline}")
        if token is not None and (not token or token != token.strip() or " " in token):
            raise ValueError("token must be non-empty and without spaces")
        self.address = address
        self.deadline = deadline
        self.wait_for_ready = wait_for_ready
        # Sent as metadata, not as call credentials: those need TLS, and a service behind a
        # TLS-terminating proxy still checks the token.
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None

    def _call_options(self, deadline: float | None) -> dict[str, Any]:
        """gRPC call options: the call's own deadline, else the client's default."""
        return {
            "timeout": deadline or self.deadline,
            "wait_for_ready": self.wait_for_ready,
            "metadata": self._metadata,
        }
