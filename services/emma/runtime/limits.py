"""gRPC message size limits of every server and mesh channel, from configuration."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from emma.runtime.config import load_config, require, setting

# gRPC's own default for received messages; sends are unlimited unless set. Both are set
# explicitly so that one oversize request is refused with RESOURCE_EXHAUSTED up front.
DEFAULT_MESSAGE_BYTES = 4 * 1024 * 1024
# gRPC takes the limits as a signed 32-bit number.
_MAX_OPTION = 2**31 - 1
# Below this, health checks and ordinary answers would no longer fit.
_MIN_MESSAGE_BYTES = 1024


@dataclasses.dataclass(frozen=True)
class MessageLimits:
    """Largest gRPC messages a service takes and sends, on its server and its mesh channels."""

    max_receive_bytes: int = setting(
        DEFAULT_MESSAGE_BYTES,
        "EMMA_MAX_RECEIVE_MESSAGE_BYTES",
        "largest gRPC message received, in bytes; larger ones get RESOURCE_EXHAUSTED",
    )
    max_send_bytes: int = setting(
        DEFAULT_MESSAGE_BYTES,
        "EMMA_MAX_SEND_MESSAGE_BYTES",
        "largest gRPC message sent, in bytes",
    )

    def __post_init__(self) -> None:
        for name, env in (
            ("max_receive_bytes", "EMMA_MAX_RECEIVE_MESSAGE_BYTES"),
            ("max_send_bytes", "EMMA_MAX_SEND_MESSAGE_BYTES"),
        ):
            value = getattr(self, name)
            require(
                _MIN_MESSAGE_BYTES <= value <= _MAX_OPTION,
                f"{env}={value}: must be in {_MIN_MESSAGE_BYTES}..{_MAX_OPTION}",
            )

    def options(self) -> list[tuple[str, Any]]:
        """The channel or server options that apply these limits."""
        return [
            ("grpc.max_receive_message_length", self.max_receive_bytes),
            ("grpc.max_send_message_length", self.max_send_bytes),
        ]


def load_message_limits(environ: Mapping[str, str] | None = None) -> MessageLimits:
    """The limits from the environment; ConfigError names a bad variable."""
    return load_config(MessageLimits, environ=os.environ if environ is None else environ)
