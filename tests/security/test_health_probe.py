"""`emma health`: the exec probe of pods whose server has TLS on (native gRPC probes cannot
do TLS), against a real server with mutual TLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from emma.cli.certs import DevCerts
from emma.cli.main import main
from emma.runtime.security import SecurityConfig
from emma.runtime.server import create_server

SERVICE = "emma.decision.v1.DecisionService"


@pytest.fixture
async def tls_address(certs: DevCerts) -> AsyncIterator[str]:
    security = SecurityConfig(
        tls_cert=str(certs.server.cert),
        tls_key=str(certs.server.key),
        tls_ca=str(certs.ca.cert),
        tls_client_auth="require",
    )
    server, port = create_server("127.0.0.1", 0, [SERVICE], security=security)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def _tls(trusted: DevCerts, client: DevCerts) -> list[str]:
    """Flags trusting `trusted`'s CA and presenting `client`'s mesh client certificate."""
    caller = client.callers["decision"]
    return [
        "--tls-ca", str(trusted.ca.cert),
        "--tls-cert", str(caller.cert),
        "--tls-key", str(caller.key),
    ]  # fmt: skip


async def _health(*args: str) -> int:
    # The command is synchronous; the server needs this loop meanwhile.
    return await asyncio.to_thread(main, ["health", *args])


async def test_the_probe_passes_over_mutual_tls(
    tls_address: str, certs: DevCerts, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = _tls(certs, certs)
    assert await _health(tls_address, "--service", SERVICE, *tls) == 0
    assert f"{tls_address} {SERVICE}: SERVING" in capsys.readouterr().out
    # The name the Kubernetes Service gives the pods, as the production probes ask for it.
    assert await _health(tls_address, *tls, "--tls-server-name", "emma-decision", "--quiet") == 0
    assert capsys.readouterr().out == ""
    # A service the server does not serve.
    assert await _health(tls_address, "--service", "emma.nothing.v1.Nothing", *tls) == 1
    assert "NOT_FOUND" in capsys.readouterr().out


async def test_the_probe_fails_without_what_the_server_requires(
    tls_address: str, certs: DevCerts, other_certs: DevCerts, capsys: pytest.CaptureFixture[str]
) -> None:
    # Plaintext, as a native gRPC probe would ask: not SERVING.
    assert await _health(tls_address, "--timeout", "2") == 1
    # TLS without the client certificate the server requires.
    assert await _health(tls_address, "--tls-ca", str(certs.ca.cert), "--timeout", "2") == 1
    # A CA that did not sign the server's certificate.
    assert await _health(tls_address, *_tls(other_certs, certs), "--timeout", "2") == 1
    # A name the certificate does not carry.
    named = [*_tls(certs, certs), "--tls-server-name", "emma.example.org"]
    assert await _health(tls_address, *named, "--timeout", "2") == 1
    assert "UNAVAILABLE" in capsys.readouterr().out


def test_bad_probe_arguments_are_refused(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "127.0.0.1:1", "--tls-cert", "a.pem"]) == 2
    assert "--tls-cert and --tls-key" in capsys.readouterr().err
    assert main(["health", "127.0.0.1:1", "--tls-ca", "/nonexistent/ca.pem"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["health", "127.0.0.1:1", "--tls-server-name", "x"]) == 2
    assert "need TLS" in capsys.readouterr().err
