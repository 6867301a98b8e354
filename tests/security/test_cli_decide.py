"""`emma decide` against a decision service with TLS, mutual TLS and caller tokens."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from emma.cli.certs import DevCerts
from emma.cli.main import main
from emma.decision.config import DecisionConfig
from emma.decision.server import build_server as build_decision
from tests.security.conftest import Start, server_env


async def start_decision(start: Start, redis_url: str, env: dict[str, str]) -> int:
    """A decision service whose profile and context are unreachable: it answers degraded."""
    config = dataclasses.replace(
        DecisionConfig(),
        port=0,
        redis_url=redis_url,
        profile_addr="127.0.0.1:1",
        context_addr="127.0.0.1:1",
        budget_ms=200.0,
        catalog_poll_s=0.0,
    )
    return await start(lambda: build_decision(config), env)


async def decide(port: int, *flags: str) -> int:
    """`emma decide` in a thread, so the servers on this event loop keep answering."""
    argv = [
        "decide",
        "--customer",
        "loyalty_card:1001",
        "--touchpoint",
        "pos",
        "--store",
        "berlin-mitte",
        "--address",
        f"localhost:{port}",
        *flags,
    ]
    return await asyncio.to_thread(main, argv)


async def test_decide_over_mutual_tls_with_a_token(
    certs: DevCerts, start: Start, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = server_env(certs, client_auth="require", tokens=True)
    port = await start_decision(start, redis_url, env)
    till = certs.callers["till"]
    code = await decide(
        port,
        "--tls-ca",
        str(certs.ca.cert),
        "--tls-cert",
        str(till.cert),
        "--tls-key",
        str(till.key),
        "--token-file",
        str(certs.tokens["till"]),
    )
    assert code == 0, capsys.readouterr().err
    answer = json.loads(capsys.readouterr().out)
    assert answer["event_id"]
    assert answer["offer_id"]


async def test_decide_without_a_token_is_refused_clearly(
    certs: DevCerts, start: Start, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = await start_decision(start, redis_url, server_env(certs, tokens=True))
    code = await decide(port, "--tls-ca", str(certs.ca.cert))
    assert code == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err


async def test_decide_in_plaintext_to_a_tls_server_fails_without_a_traceback(
    certs: DevCerts, start: Start, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = await start_decision(start, redis_url, server_env(certs))
    code = await decide(port, "--deadline", "0.5")
    assert code == 1
    assert "Traceback" not in capsys.readouterr().err


async def test_a_missing_token_file_is_a_usage_error(
    start: Start, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = await start_decision(start, redis_url, {})
    code = await decide(port, "--token-file", "/nonexistent/token")
    assert code == 2
    assert "/nonexistent/token" in capsys.readouterr().err
