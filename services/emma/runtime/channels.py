"""Outgoing gRPC channels inside the mesh: traced, with message limits, keepalive and TLS."""

from __future__ import annotations

from typing import Any

import grpc

from emma.runtime.limits import load_message_limits
from emma.runtime.security import (
    SecurityConfig,
    load_security,
    mesh_call_interceptors,
    mesh_channel_credentials,
)
from emma.runtime.tracing import client_interceptors


def mesh_channel(target: str, security: SecurityConfig | None = None) -> grpc.aio.Channel:
    """An aio channel to another Emma service; reuse it, connections are costly.

    TLS and this service's credentials follow `security` (EMMA_MESH_* variables when None).
    """
    security = security or load_security()
    return _open(
        target,
        mesh_channel_credentials(security),
        options=[
            # EMMA_MAX_RECEIVE_MESSAGE_BYTES and EMMA_MAX_SEND_MESSAGE_BYTES, as on the server.
            *load_message_limits().options(),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # gRPC's default reconnect backoff grows to minutes; while it waits, calls fail
            # fast with UNAVAILABLE. A restarted dependency must be used again within a second.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1_000),
            # With a dns:/// target naming a headless Service, spread calls over every pod
            # instead of pinning all of them to the first address (pick_first).
            ("grpc.lb_policy_name", "round_robin"),
        ],
        interceptors=[*client_interceptors(), *mesh_call_interceptors(security)],
    )


def _open(
    target: str, credentials: grpc.ChannelCredentials | None, **settings: Any
) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(target, **settings)
    return grpc.aio.secure_channel(target, credentials, **settings)
