"""The decision service reaches profile and context that require credentials, with its own."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import grpc
import pytest

from emma.cli.certs import DevCerts
from emma.context.config import ContextConfig
from emma.context.server import build_server as build_context
from emma.decision.config import DecisionConfig
from emma.decision.server import build_server as build_decision
from emma.profile.config import ProfileConfig
from emma.profile.server import build_server as build_profile
from emma_client import AsyncEmmaClient, EmmaError, tls_credentials

from .conftest import Start, server_env, token

WHEN = datetime(2026, 7, 10, 17, 30, tzinfo=UTC)


def mesh_env(certs: DevCerts, how: str) -> dict[str, str]:
    """The decision service's credentials towards the mesh: its certificate or its token."""
    env = {"EMMA_MESH_TLS_CA": str(certs.ca.cert)}
    if how == "certificate":
        decision = certs.callers["decision"]
        return env | {
            "EMMA_MESH_TLS_CERT": str(decision.cert),
            "EMMA_MESH_TLS_KEY": str(decision.key),
        }
    if how == "token":
        return env | {"EMMA_MESH_TOKEN": token(certs, "decision")}
    return env


async def start_mesh(certs: DevCerts, start: Start, redis_url: str, how: str) -> int:
    """Profile and context demanding credentials, and a decision server calling them; all
    over TLS and checking callers. Returns the decision server's port."""
    client_auth = "require" if how == "certificate" else "none"
    guarded = server_env(certs, client_auth=client_auth, tokens=True)
    profile_config = dataclasses.replace(ProfileConfig(), port=0, redis_url=redis_url)
    profile = await start(lambda: build_profile(profile_config), guarded)
    context = await start(
        lambda: build_context(dataclasses.replace(ContextConfig(), port=0)), guarded
    )
    decision_config = dataclasses.replace(
        DecisionConfig(),
        port=0,
        redis_url=redis_url,
        profile_addr=f"127.0.0.1:{profile}",
        context_addr=f"127.0.0.1:{context}",
        budget_ms=2000.0,
        catalog_poll_s=0.0,
    )
    return await start(
        lambda: build_decision(decision_config),
        server_env(certs, tokens=True) | mesh_env(certs, how),
    )


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
