"""Fixtures of the fuzz tests: the mesh on a private Redis, blocking stubs, example counts.

EMMA_FUZZ_LONG=1 runs the long mode: 12,000 examples per RPC test, so that at least 10,000
requests reach each RPC although hypothesis drops some draws (a few hours on two cores);
EMMA_FUZZ_EXAMPLES=N sets the count per RPC test directly, EMMA_FUZZ_REPORT=FILE writes the
counts and outcomes as JSON (every 500 requests, so a long run can be watched).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import redis
from hypothesis import HealthCheck, Phase, settings

from emma.context.v1 import context_pb2_grpc
from emma.decision.v1 import decision_pb2_grpc
from emma.profile.v1 import profile_pb2_grpc
from emma.runtime.redis_server import RedisServer
from tests.fuzz.checks import COUNTS, write_report
from tests.fuzz.mesh import Addresses, Mesh

LONG = os.environ.get("EMMA_FUZZ_LONG", "") not in ("", "0")
EXAMPLES = int(os.environ.get("EMMA_FUZZ_EXAMPLES", "12000" if LONG else "100"))
# The database the mesh writes; each test starts it empty.
FUZZ_DB = 3
# Beyond this many keys the database is emptied before the next example, so that
# snapshots stay cheap however long the run.
MAX_KEYS = 150

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # The servers are session fixtures; examples are big by design.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    print_blob=True,
)


@pytest.fixture(scope="session")
def fuzz_redis_url(redis_server: RedisServer) -> str:
    return redis_server.url.rsplit("/", 1)[0] + f"/{FUZZ_DB}"


@pytest.fixture(scope="session")
def mesh(fuzz_redis_url: str) -> Iterator[Addresses]:
    started = Mesh(fuzz_redis_url)
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture(scope="session")
def redis_client(fuzz_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(fuzz_redis_url)
    yield client
    client.close()


def trim(client: redis.Redis) -> None:
    """Empties the fuzz database once it holds many keys (call between examples)."""
    if client.dbsize() > MAX_KEYS:
        client.flushdb()


def _channel(address: str) -> grpc.Channel:
    # No client-side limit on sends: oversize requests must reach the server's own limit.
    return grpc.insecure_channel(
        address,
        options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
    )


@pytest.fixture(scope="session")
def channels(mesh: Addresses) -> Iterator[dict[str, grpc.Channel]]:
    opened = {
        "profile": _channel(mesh.profile),
        "context": _channel(mesh.context),
        "decision": _channel(mesh.decision),
    }
    yield opened
    for channel in opened.values():
        channel.close()


@pytest.fixture(scope="session")
def profile_stub(channels: dict[str, grpc.Channel]) -> Any:
    return profile_pb2_grpc.ProfileServiceStub(channels["profile"])


@pytest.fixture(scope="session")
def context_stub(channels: dict[str, grpc.Channel]) -> Any:
    return context_pb2_grpc.ContextServiceStub(channels["context"])


@pytest.fixture(scope="session")
def decision_stub(channels: dict[str, grpc.Channel]) -> Any:
    return decision_pb2_grpc.DecisionServiceStub(channels["decision"])


@pytest.fixture(scope="session", autouse=True)
def _report() -> Iterator[None]:
    yield
    write_report()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COUNTS:
        terminalreporter.write_line(
            "fuzz requests per RPC: "
            + ", ".join(f"{rpc} {count}" for rpc, count in sorted(COUNTS.items()))
        )
