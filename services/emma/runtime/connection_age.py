"""How long a server keeps a caller's connection: reconnecting callers rebalance its workers."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from emma.runtime.config import load_config, require, setting

# gRPC takes the age in milliseconds as a signed 32-bit number.
_MAX_AGE_S = (2**31 - 1) // 1000


@dataclasses.dataclass(frozen=True)
class ConnectionAge:
    """After `max_age_s` a server sends its caller GOAWAY: calls in flight finish on the old
    connection, new ones open a new connection. A caller's connections outlive deployments
    and scaling otherwise: the kernel deals each to one worker process of a port
    (SO_REUSEPORT) and a Service to one pod, once, so a split that came out uneven, or a
    pod added later, stays so for as long as the caller lives."""

    max_age_s: float = setting(
        300.0,
        "EMMA_MAX_CONNECTION_AGE_S",
        "seconds after which a server asks a caller to reconnect (calls in flight finish "
        "first; gRPC adds up to 10 % either way); 0: never",
    )

    def __post_init__(self) -> None:
        require(
            0 <= self.max_age_s <= _MAX_AGE_S,
            f"EMMA_MAX_CONNECTION_AGE_S={self.max_age_s}: must be in 0..{_MAX_AGE_S}",
        )

    def options(self) -> list[tuple[str, Any]]:
        """The server options that apply it (none when off)."""
        if self.max_age_s == 0:
            return []
        return [("grpc.max_connection_age_ms", max(1, round(self.max_age_s * 1000)))]


def load_connection_age(environ: Mapping[str, str] | None = None) -> ConnectionAge:
    """The setting from the environment; ConfigError names a bad variable."""
    return load_config(ConnectionAge, environ=os.environ if environ is None else environ)
