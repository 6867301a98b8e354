"""gRPC channels for the SDK, with retries of UNAVAILABLE done by gRPC itself (service config),
and calls over the least busy of them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import grpc

from emma_client.base import LeastBusy, worker_named

SERVICE_NAME = "emma.decision.v1.DecisionService"
#: Every service the SDK calls; each of their methods is safe to retry (Reward and
#: RecordEvents carry idempotency keys, the others only read or are idempotent).
SERVICE_NAMES = (SERVICE_NAME, "emma.profile.v1.ProfileService")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """gRPC retry policy for UNAVAILABLE: attempts (gRPC caps them at 5) with jittered backoff."""

    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 1.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= 5:
            raise ValueError(f"max_attempts must be 2..5, got {self.max_attempts}")
        if not 0 < self.initial_backoff_s <= self.max_backoff_s:
            raise ValueError("backoffs must satisfy 0 < initial_backoff_s <= max_backoff_s")
        if self.backoff_multiplier < 1:
            raise ValueError("backoff_multiplier must be >= 1")


def service_config(retry: RetryPolicy | None) -> str:
    """The channel's service config JSON: a retry policy for every method the SDK calls."""
    method: dict[str, Any] = {"name": [{"service": name} for name in SERVICE_NAMES]}
    if retry is not None:
        method["retryPolicy"] = {
            "maxAttempts": retry.max_attempts,
            "initialBackoff": f"{retry.initial_backoff_s}s",
            "maxBackoff": f"{retry.max_backoff_s}s",
            "backoffMultiplier": retry.backoff_multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps({"methodConfig": [method]})


def channel_options(
    retry: RetryPolicy | None, own_connection: bool = False
) -> list[tuple[str, Any]]:
    """The SDK's channel options; `own_connection` keeps the channel from sharing its
    connection with other channels to the same address (gRPC shares them unless told)."""
    return [
        *([("grpc.use_local_subchannel_pool", 1)] if own_connection else []),
        ("grpc.enable_retries", 1 if retry is not None else 0),
        ("grpc.service_config", service_config(retry)),
        # A mesh that is restarting should be found again quickly, not after gRPC's default 1 s+.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        # A target naming several replicas (dns:/// or ipv4:a,b) spreads calls over all of
        # them, and a retry of a call cut off by a dying replica goes to a live one.
        ("grpc.lb_policy_name", "round_robin"),
    ]


def _pem(source: str | Path | bytes | None) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    return Path(source).read_bytes()


def tls_credentials(
    ca: str | Path | bytes | None = None,
    cert: str | Path | bytes | None = None,
    key: str | Path | bytes | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials from PEM files or bytes: the CA the server's certificate chains to
    (the system's roots when None) and, for mutual TLS, this caller's certificate and key."""
    if (cert is None) != (key is None):
        raise ValueError("give both cert and key for mutual TLS, or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(ca), private_key=_pem(key), certificate_chain=_pem(cert)
    )


def sync_channels(
    address: str,
    retry: RetryPolicy | None,
    credentials: grpc.ChannelCredentials | None,
    count: int = 1,
) -> list[grpc.Channel]:
    """`count` channels to `address`, each on a connection of its own when several."""
    options = channel_options(retry, own_connection=count > 1)
    if credentials is None:
        return [grpc.insecure_channel(address, options=options) for _ in range(count)]
    return [grpc.secure_channel(address, credentials, options=options) for _ in range(count)]


def aio_channels(
    address: str,
    retry: RetryPolicy | None,
    credentials: grpc.ChannelCredentials | None,
    count: int = 1,
) -> list[grpc.aio.Channel]:
    """`count` asyncio channels to `address`, each on a connection of its own when several."""
    options = channel_options(retry, own_connection=count > 1)
    if credentials is None:
        return [grpc.aio.insecure_channel(address, options=options) for _ in range(count)]
    return [grpc.aio.secure_channel(address, credentials, options=options) for _ in range(count)]


def call_sync(stubs: LeastBusy[Any], method: str, request: Any, options: dict[str, Any]) -> Any:
    """`method` of the stub the next call should take (LeastBusy), with `request` and call
    `options`; notes the worker that answered."""
    with stubs.use() as slot:
        response, call = getattr(slot.item, method).with_call(request, **options)
        slot.answered_by(worker_named(call.trailing_metadata()))
    return response


async def answered(call: Any) -> tuple[Any, str | None]:
    """An asyncio call's answer, and the worker its trailing metadata names."""
    return await call, worker_named(await call.trailing_metadata())


async def call_aio(
    stubs: LeastBusy[Any], method: str, request: Any, options: dict[str, Any]
) -> Any:
    """As call_sync, over an asyncio stub."""
    with stubs.use() as slot:
        response, worker = await answered(getattr(slot.item, method)(request, **options))
        slot.answered_by(worker)
    return response
