"""The decision service reaches profile and context that require credentials, with its own."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from emma.cli.certs import DevCerts
from emma_client import AsyncEmmaClient, EmmaError, tls_credentials

from .conftest import Start, start_guarded_mesh, token

WHEN = datetime(2026, 7, 10, 17, 30, tzinfo=UTC)


async def start_mesh(certs: DevCerts, start: Start, redis_url: str, how: str) -> int:
    """The guarded mesh; the decision server's port."""
    _, _, decision = await start_guarded_mesh(certs, start, redis_url, how)
    return decision


async def decide(certs: DevCerts, port: int, caller: str = "till") -> list[str]:
    """One Decide as `caller` over TLS with its token; the degraded dependencies."""
    async with AsyncEmmaClient(
        f"127.0.0.1:{port}",
        credentials=tls_credentials(certs.ca.cert),
        token=token(certs, caller),
        deadline=10,
    ) as client:
        decision = await client.decide(
            "customer_id:c-mesh-1", touchpoint="app", budget_ms=2000, request_time=WHEN
        )
    return list(decision.degraded)


@pytest.mark.parametrize("how", ["certificate", "token"])
async def test_decision_reaches_guarded_profile_and_context(
    certs: DevCerts, start: Start, redis_url: str, how: str
) -> None:
    port = await start_mesh(certs, start, redis_url, how)
    assert await decide(certs, port) == []


async def test_without_mesh_credentials_the_decision_is_degraded(
    certs: DevCerts, start: Start, redis_url: str
) -> None:
    port = await start_mesh(certs, start, redis_url, "none")
    # Answered all the same (a dependency refusing is a fault, not the caller's error)...
    degraded = await decide(certs, port)
    # ...but without what profile and context would have told.
    assert {"profile", "context"} <= set(degraded)


async def test_the_sdk_caller_needs_the_decide_scope(
    certs: DevCerts, start: Start, redis_url: str
) -> None:
    port = await start_mesh(certs, start, redis_url, "token")
    with pytest.raises(EmmaError) as refused:
        await decide(certs, port, caller="ingest")
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    async with AsyncEmmaClient(
        f"127.0.0.1:{port}", credentials=tls_credentials(certs.ca.cert), deadline=5
    ) as anonymous:
        with pytest.raises(EmmaError) as unknown:
            await anonymous.decide("customer_id:c-mesh-1", touchpoint="app")
    assert unknown.value.code == grpc.StatusCode.UNAUTHENTICATED
