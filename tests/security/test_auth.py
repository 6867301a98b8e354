"""Caller scopes on a real profile server: UNAUTHENTICATED, PERMISSION_DENIED, and what passes."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from emma.cli.certs import DevCerts
from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2
from emma.decision.v1 import decision_pb2
from emma.profile.config import ProfileConfig
from emma.profile.server import build_server as build_profile
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma.runtime.auth import METHOD_SCOPES, Callers, Scope
from emma.runtime.config import ConfigError
from emma.runtime.server import EmmaServer, create_server

from .conftest import Start, bearer, client_credentials, server_env

if TYPE_CHECKING:
    from emma.profile.v1.profile_pb2_grpc import ProfileServiceAsyncStub

CUSTOMER = common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-sec-1")
ERASE = profile_pb2.EraseCustomerRequest(customer=CUSTOMER)
GET = profile_pb2.GetProfileRequest(customer=CUSTOMER)


@pytest.fixture
async def profile_port(redis_url: str, certs: DevCerts, start: Start) -> int:
    """A profile server over TLS checking callers against the development callers file."""
    config = dataclasses.replace(ProfileConfig(), port=0, redis_url=redis_url)
    return await start(lambda: build_profile(config), server_env(certs, tokens=True))


@pytest.fixture
async def channels(
    certs: DevCerts, profile_port: int
) -> AsyncIterator[dict[str | None, grpc.aio.Channel]]:
    """TLS channels to the profile server: without a client certificate, and as each caller."""
    opened = {
        caller: grpc.aio.secure_channel(
            f"127.0.0.1:{profile_port}", client_credentials(certs, caller)
        )
        for caller in (None, "till", "admin")
    }
    yield opened
    for channel in opened.values():
        await channel.close(None)


def profile(channels: dict[str | None, grpc.aio.Channel]) -> ProfileServiceAsyncStub:
    return profile_pb2_grpc.ProfileServiceStub(channels[None])


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def test_a_call_without_a_token_is_unauthenticated(
    channels: dict[str | None, grpc.aio.Channel],
) -> None:
    error = await refused(profile(channels).GetProfile(GET, timeout=5))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing credentials" in (error.details() or "")


@pytest.mark.parametrize(
    "header",
    [
        ("authorization", "Bearer not-a-known-token"),
        ("authorization", "Bearer "),
        ("authorization", "Basic dXNlcjpwYXNz"),
    ],
)
async def test_a_wrong_token_is_unauthenticated(
    channels: dict[str | None, grpc.aio.Channel], header: tuple[str, str]
) -> None:
    error = await refused(profile(channels).GetProfile(GET, metadata=(header,), timeout=5))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_till_token_cannot_erase_a_customer(
    certs: DevCerts, channels: dict[str | None, grpc.aio.Channel]
) -> None:
    stub = profile(channels)
    # The till may read what a decision needs...
    response = await stub.GetProfile(GET, metadata=bearer(certs, "till"), timeout=5)
    assert not response.found
    # ...but not erase, nor write events (that is `ingest`).
    error = await refused(stub.EraseCustomer(ERASE, metadata=bearer(certs, "till"), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'admin'" in (error.details() or "")
    events = profile_pb2.RecordEventsRequest()
    error = await refused(stub.RecordEvents(events, metadata=bearer(certs, "till"), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_admin_token_erases(
    certs: DevCerts, channels: dict[str | None, grpc.aio.Channel]
) -> None:
    response = await profile(channels).EraseCustomer(
        ERASE, metadata=bearer(certs, "admin"), timeout=5
    )
    assert not response.erased  # nothing was held: the call itself went through


async def test_client_certificate_identities_carry_scopes(
    certs: DevCerts, redis_url: str, start: Start
) -> None:
    config = dataclasses.replace(ProfileConfig(), port=0, redis_url=redis_url)
    port = await start(
        lambda: build_profile(config), server_env(certs, client_auth="require", tokens=True)
    )
    for caller, code in (("till", grpc.StatusCode.PERMISSION_DENIED), ("admin", None)):
        async with grpc.aio.secure_channel(
            f"127.0.0.1:{port}", client_credentials(certs, caller)
        ) as channel:
            stub = profile_pb2_grpc.ProfileServiceStub(channel)
            # Both may read what a decision needs (`decide`); only the admin may erase.
            if caller == "till":
                await stub.GetProfile(GET, timeout=5)
            if code is None:
                await stub.EraseCustomer(ERASE, timeout=5)
            else:
                assert (await refused(stub.EraseCustomer(ERASE, timeout=5))).code() == code


async def test_a_certificate_not_in_the_callers_file_is_unauthenticated(
    certs: DevCerts, redis_url: str, start: Start, tmp_path: Path
) -> None:
    # The callers file knows only the admin's token, not the till's certificate.
    admin_only = tmp_path / "callers.json"
    admin_hash = yaml.safe_load(certs.callers_file.read_text())["callers"]["admin"]["token_sha256"]
    admin_only.write_text(
        json.dumps({"callers": {"ops": {"token_sha256": admin_hash, "scopes": ["admin"]}}})
    )
    env = server_env(certs, client_auth="require") | {"EMMA_TOKENS": str(admin_only)}
    config = dataclasses.replace(ProfileConfig(), port=0, redis_url=redis_url)
    port = await start(lambda: build_profile(config), env)
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{port}", client_credentials(certs, "till")
    ) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        error = await refused(stub.GetProfile(GET, timeout=5))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "identity" in (error.details() or "")
        # The same connection with the admin's token (JSON callers file) passes.
        await stub.EraseCustomer(ERASE, metadata=bearer(certs, "admin"), timeout=5)


async def test_health_works_without_credentials(
    channels: dict[str | None, grpc.aio.Channel],
) -> None:
    stub = health_pb2_grpc.HealthStub(channels[None])
    response = await stub.Check(
        health_pb2.HealthCheckRequest(service="emma.profile.v1.ProfileService"), timeout=5
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def list_services(channel: grpc.aio.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = []
    async for response in call:
        names += [s.name for s in response.list_services_response.service]
    return names


def plain_server() -> tuple[EmmaServer, int]:
    return create_server("127.0.0.1", 0, ["emma.test.Service"])


async def test_reflection_is_served_unless_switched_off(start: Start) -> None:
    on = await start(plain_server, {})
    off = await start(plain_server, {"EMMA_REFLECTION": "false"})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{on}") as channel:
        assert "emma.test.Service" in await list_services(channel)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{off}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as absent:
            await list_services(channel)
        assert absent.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # Health stays.
        health = health_pb2_grpc.HealthStub(channel)
        await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)


def test_every_method_of_every_service_has_a_scope() -> None:
    methods = {
        f"/{service.full_name}/{method.name}"
        for module in (decision_pb2, profile_pb2, context_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods == set(METHOD_SCOPES)
    assert METHOD_SCOPES["/emma.profile.v1.ProfileService/EraseCustomer"] == Scope.ADMIN
    assert METHOD_SCOPES["/emma.decision.v1.DecisionService/Decide"] == Scope.DECIDE


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ([], "callers"),
        ({"callers": {"x": {"scopes": ["decide"]}}}, "callers.x"),
        ({"callers": {"x": {"identity": "a", "scopes": ["root"]}}}, "callers.x.scopes"),
        ({"callers": {"x": {"token_sha256": "abc", "scopes": []}}}, "callers.x.token_sha256"),
        ({"callers": {"x": {"identity": "a", "scopes": "decide"}}}, "callers.x.scopes"),
        ({"callers": {"x": {"identity": "a", "token": "t", "scopes": []}}}, "unknown keys"),
        (
            {
                "callers": {
                    "x": {"identity": "a", "scopes": []},
                    "y": {"identity": "a", "scopes": []},
                }
            },
            "callers.y.identity",
        ),
    ],
)
def test_a_malformed_callers_file_is_refused_naming_the_entry(document: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        Callers.parse(document, "EMMA_TOKENS='callers.yaml'")


async def test_listening_beyond_loopback_without_auth_is_warned(
    caplog: pytest.LogCaptureFixture, certs: DevCerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    def warned(host: str) -> bool:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="emma.runtime.auth"):
            create_server(host, 0, ["emma.test.Service"])
        return any("without caller authentication" in r.getMessage() for r in caplog.records)

    assert not warned("127.0.0.1")
    assert not warned("[::1]")
    assert warned("0.0.0.0")
    monkeypatch.setenv("EMMA_TOKENS", str(certs.callers_file))
    assert not warned("0.0.0.0")
