"""TLS and mutual TLS over loopback with the development certificates: real handshakes."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emma.cli.certs import DevCerts
from emma.runtime.config import ConfigError
from emma.runtime.security import SecurityConfig, load_security
from emma.runtime.server import EmmaServer, create_server

from .conftest import Start, client_credentials, server_env

SERVICE = "emma.test.Service"


def health_server() -> tuple[EmmaServer, int]:
    return create_server("127.0.0.1", 0, [SERVICE])


async def check(
    port: int, credentials: grpc.ChannelCredentials | None, host: str = "127.0.0.1"
) -> int:
    """The health status of SERVICE over a fresh channel; raises AioRpcError when refused."""
    target = f"{host}:{port}"
    channel = (
        grpc.aio.insecure_channel(target)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials)
    )
    async with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    return int(response.status)


async def test_tls_handshake_verifies_the_server(certs: DevCerts, start: Start) -> None:
    port = await start(health_server, server_env(certs))
    assert await check(port, client_credentials(certs)) == health_pb2.HealthCheckResponse.SERVING
    assert await check(port, client_credentials(certs), "localhost") == (
        health_pb2.HealthCheckResponse.SERVING
    )


async def test_a_client_trusting_another_ca_is_refused(
    certs: DevCerts, other_certs: DevCerts, start: Start
) -> None:
    port = await start(health_server, server_env(certs))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(port, client_credentials(other_certs))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_plaintext_client_cannot_talk_to_a_tls_server(
    certs: DevCerts, start: Start
) -> None:
    port = await start(health_server, server_env(certs))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(port, None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_a_client_without_a_certificate(
    certs: DevCerts, other_certs: DevCerts, start: Start
) -> None:
    port = await start(health_server, server_env(certs, client_auth="require"))
    with pytest.raises(grpc.aio.AioRpcError) as no_cert:
        await check(port, client_credentials(certs))
    assert no_cert.value.code() == grpc.StatusCode.UNAVAILABLE
    # A certificate from another CA is refused as well...
    foreign = grpc.ssl_channel_credentials(
        certs.ca.cert.read_bytes(),
        other_certs.callers["till"].key.read_bytes(),
        other_certs.callers["till"].cert.read_bytes(),
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await check(port, foreign)
    # ...while one the configured CA issued gets through.
    assert await check(port, client_credentials(certs, "till")) == (
        health_pb2.HealthCheckResponse.SERVING
    )


async def test_rotated_certificate_files_are_served_to_new_connections(
    certs: DevCerts, other_certs: DevCerts, start: Start, tmp_path: Path
) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(certs.server.cert, cert)
    shutil.copy(certs.server.key, key)
    port = await start(
        health_server,
        {"EMMA_TLS_CERT": str(cert), "EMMA_TLS_KEY": str(key)},
    )
    assert await check(port, client_credentials(certs)) == health_pb2.HealthCheckResponse.SERVING
    # Rotate to a certificate of the other CA: key first, then the certificate.
    shutil.copy(other_certs.server.key, key)
    shutil.copy(other_certs.server.cert, cert)
    assert await check(port, client_credentials(other_certs)) == (
        health_pb2.HealthCheckResponse.SERVING
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await check(port, client_credentials(certs))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EMMA_TLS_CERT": "x.pem"}, "EMMA_TLS_KEY"),
        ({"EMMA_TLS_CLIENT_AUTH": "optional"}, "EMMA_TLS_CLIENT_AUTH"),
        ({"EMMA_TLS_CLIENT_AUTH": "require"}, "EMMA_TLS_CA"),
        ({"EMMA_TLS_CERT": "/nonexistent.pem", "EMMA_TLS_KEY": "/k"}, "EMMA_TLS_CERT"),
        ({"EMMA_MESH_TLS_CERT": "c", "EMMA_MESH_TLS_KEY": "k"}, "EMMA_MESH_TLS_CA"),
        ({"EMMA_MESH_TOKEN": "two words"}, "EMMA_MESH_TOKEN"),
        ({"EMMA_REFLECTION": "maybe"}, "EMMA_REFLECTION"),
        ({"EMMA_TOKENS": "/nonexistent.yaml"}, "EMMA_TOKENS"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_security(env)


def test_every_security_variable_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    variables = [field.metadata["env"] for field in dataclasses.fields(SecurityConfig)]
    assert len(variables) == 10
    assert [name for name in variables if f"| `{name}` |" not in readme] == []
