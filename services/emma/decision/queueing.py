"""How long a Decide call waited before its handler ran, from the timeout its caller gave it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Metadata a caller sends with the timeout (ms) it gave the call; the Python SDK and
# `emma bench` do. gRPC sends only what is left of a deadline when the call leaves, and
# starts its own clock when the call arrives: neither tells how long the call waited.
CALL_TIMEOUT_HEADER = "emma-call-timeout-ms"


def queued_s(metadata: Iterable[tuple[str, Any]] | None, remaining_s: float | None) -> float | None:
    """Seconds between the caller starting the call and its handler running here.

    The caller's own timeout less what the call has left now: the caller's queue, a retry's
    backoff, and this server's queue before the handler (on a replica that accepts calls
    more slowly than they come, they wait in gRPC, where no event-loop lag shows them).
    No clocks are compared, so hosts need not agree on the time. None when the caller did
    not say (or said nonsense, which is ignored, never an error), or set no deadline.
    """
    if remaining_s is None or not metadata:
        return None
    for key, value in metadata:
        if key == CALL_TIMEOUT_HEADER:
            try:
                timeout_s = float(value) / 1000.0
            except (TypeError, ValueError):
                return None
            return max(0.0, timeout_s - remaining_s) if timeout_s > 0 else None
    return None
