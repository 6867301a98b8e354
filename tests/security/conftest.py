"""Fixtures of the security tests: development certificates made by `emma certs dev`'s code."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import grpc
import pytest

from emma.cli.certs import DevCerts, make_dev_certs
from emma.context.config import ContextConfig
from emma.context.server import build_server as build_context
from emma.decision.config import DecisionConfig
from emma.decision.server import build_server as build_decision
from emma.profile.config import ProfileConfig
from emma.profile.server import build_server as build_profile
from emma.runtime.server import EmmaServer

SECURITY_VARIABLES = (
    "EMMA_TLS_CERT",
    "EMMA_TLS_KEY",
    "EMMA_TLS_CA",
    "EMMA_TLS_CLIENT_AUTH",
    "EMMA_TOKENS",
    "EMMA_REFLECTION",
    "EMMA_MESH_TLS_CA",
    "EMMA_MESH_TLS_CERT",
    "EMMA_MESH_TLS_KEY",
    "EMMA_MESH_TOKEN",
)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    """A development CA, server and caller certificates, tokens and the callers file."""
    return make_dev_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    """A second, unrelated CA and its certificates: trusted by nobody in these tests."""
    return make_dev_certs(tmp_path_factory.mktemp("other-certs"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without security settings inherited from the caller's shell."""
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield


def token(certs: DevCerts, caller: str) -> str:
    return certs.tokens[caller].read_text()


def bearer(certs: DevCerts, caller: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token(certs, caller)}"),)


def client_credentials(certs: DevCerts, caller: str | None = None) -> grpc.ChannelCredentials:
    """TLS trusting the development CA; with `caller`'s certificate for mutual TLS."""
    issued = certs.callers[caller] if caller else None
    return grpc.ssl_channel_credentials(
        certs.ca.cert.read_bytes(),
        issued.key.read_bytes() if issued else None,
        issued.cert.read_bytes() if issued else None,
    )


def server_env(
    certs: DevCerts, *, client_auth: str = "none", tokens: bool = False
) -> dict[str, str]:
    """The EMMA_TLS_* (and EMMA_TOKENS) variables of a TLS server using the dev files."""
    env = {
        "EMMA_TLS_CERT": str(certs.server.cert),
        "EMMA_TLS_KEY": str(certs.server.key),
        "EMMA_TLS_CLIENT_AUTH": client_auth,
    }
    if client_auth != "none":
        env["EMMA_TLS_CA"] = str(certs.ca.cert)
    if tokens:
        env["EMMA_TOKENS"] = str(certs.callers_file)
    return env


Build = Callable[[], tuple[EmmaServer, int]]
Start = Callable[[Build, dict[str, str]], Awaitable[int]]


@pytest.fixture
async def start(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Start]:
    """Builds and starts a server with the given environment; returns its port."""
    servers: list[EmmaServer] = []

    async def run(build: Build, env: dict[str, str]) -> int:
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            server, port = build()
        await server.start()
        servers.append(server)
        return port

    yield run
    for server in servers:
        await server.stop(0)


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


async def start_guarded_mesh(
    certs: DevCerts, start: Start, redis_url: str, how: str
) -> tuple[int, int, int]:
    """Profile and context demanding credentials (client certificates when `how` is
    "certificate"), and a decision server calling them as `how` says; all over TLS and
    checking callers. Returns the profile, context and decision ports."""
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
        # Called over the mesh, where the credentials are what is tested.
        dependencies="services",
        profile_addr=f"127.0.0.1:{profile}",
        context_addr=f"127.0.0.1:{context}",
        budget_ms=2000.0,
        catalog_poll_s=0.0,
    )
    decision = await start(
        lambda: build_decision(decision_config),
        server_env(certs, tokens=True) | mesh_env(certs, how),
    )
    return profile, context, decision
