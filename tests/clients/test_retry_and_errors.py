"""UNAVAILABLE is retried by gRPC's own retry policy; other errors surface as EmmaError at once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from emma.decision.queueing import CALL_TIMEOUT_HEADER as SERVICE_CALL_TIMEOUT_HEADER
from emma.runtime.redis_server import free_port
from emma_client import AsyncEmmaClient, EmmaClient, EmmaError, RetryPolicy
from emma_client.base import CALL_TIMEOUT_HEADER
from emma_client.channels import channel_options, service_config
from tests.clients.fake_decision import ScriptedDecisionService, serving, start_server

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def flaky() -> ScriptedDecisionService:
    return ScriptedDecisionService([UNAVAILABLE, UNAVAILABLE])


@pytest.fixture
def flaky_address(flaky: ScriptedDecisionService) -> Iterator[str]:
    with serving(flaky) as address:
        yield address


def test_service_config_retries_only_unavailable() -> None:
    config = json.loads(service_config(RetryPolicy(max_attempts=4, initial_backoff_s=0.05)))
    (method,) = config["methodConfig"]
    assert method["name"] == [
        {"service": "emma.decision.v1.DecisionService"},
        {"service": "emma.profile.v1.ProfileService"},
    ]
    policy = method["retryPolicy"]
    assert policy["maxAttempts"] == 4
    assert policy["initialBackoff"] == "0.05s"
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert ("grpc.enable_retries", 1) in channel_options(RetryPolicy())
    assert ("grpc.enable_retries", 0) in channel_options(None)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 1}, {"max_attempts": 6}, {"initial_backoff_s": 2.0, "max_backoff_s": 1.0}],
)
def test_retry_policy_rejects_what_grpc_would_not_honour(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_sync_client_retries_unavailable(
    flaky: ScriptedDecisionService, flaky_address: str
) -> None:
    with EmmaClient(flaky_address, deadline=5) as client:
        decision = client.decide(loyalty_card="1001", touchpoint="pos")
    assert flaky.attempts == 3
    assert decision.offer_id == "emmentaler-20"
    assert decision.channel == "receipt"


async def test_async_client_retries_unavailable(
    flaky: ScriptedDecisionService, flaky_address: str
) -> None:
    async with AsyncEmmaClient(flaky_address, deadline=5) as client:
        assert await client.reward("ev-3", 1.0, "click") is True
    assert flaky.attempts == 3


def test_retries_stop_after_max_attempts() -> None:
    service = ScriptedDecisionService([UNAVAILABLE] * 10)
    with serving(service) as address:
        policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
        with (
            EmmaClient(address, deadline=5, retry=policy) as client,
            pytest.raises(EmmaError) as caught,
        ):
            client.activate("ev-1")
    assert caught.value.code == UNAVAILABLE
    assert caught.value.method == "Activate"
    assert service.attempts == 3


def test_no_retries_when_disabled() -> None:
    service = ScriptedDecisionService([UNAVAILABLE])
    with (
        serving(service) as address,
        EmmaClient(address, retry=None) as client,
        pytest.raises(EmmaError),
    ):
        client.decide("customer_id:c-1", touchpoint="app")
    assert service.attempts == 1


async def test_invalid_argument_is_not_retried() -> None:
    service = ScriptedDecisionService([grpc.StatusCode.INVALID_ARGUMENT])
    with serving(service) as address:
        async with AsyncEmmaClient(address) as client:
            with pytest.raises(EmmaError) as caught:
                await client.decide("customer_id:c-1", touchpoint="app")
    assert service.attempts == 1
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "scripted INVALID_ARGUMENT" in str(caught.value)


def test_per_call_deadline_overrides_the_default() -> None:
    # Nothing listens on this port: the call fails, but only after the per-call deadline,
    # because wait_for_ready keeps it waiting for the server instead of failing fast.
    with EmmaClient(f"127.0.0.1:{free_port()}", deadline=30, wait_for_ready=True) as client:
        started = time.monotonic()
        with pytest.raises(EmmaError) as caught:
            client.decide("customer_id:c-1", touchpoint="app", deadline=0.3)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 0.25 < time.monotonic() - started < 5


async def test_every_call_says_the_timeout_it_was_given() -> None:
    # The decision service counts a decision's budget from when the caller started it.
    service = ScriptedDecisionService()
    with serving(service) as address:
        with EmmaClient(address, deadline=2.5, token="t0k") as client:
            client.decide("customer_id:c-1", touchpoint="app")
            client.decide("customer_id:c-1", touchpoint="app", deadline=0.75)
            client.activate("ev-1")
        async with AsyncEmmaClient(address) as aio_client:
            await aio_client.decide("customer_id:c-1", touchpoint="app", deadline=0.3)
    assert [m[CALL_TIMEOUT_HEADER] for m in service.metadata] == ["2500", "750", "2500", "300"]
    # The name the decision service reads: the SDK keeps its own copy, as it ships alone.
    assert CALL_TIMEOUT_HEADER == SERVICE_CALL_TIMEOUT_HEADER
    assert service.metadata[0]["authorization"] == "Bearer t0k"


def test_server_that_comes_up_a_moment_later_is_reached_within_the_deadline() -> None:
    service = ScriptedDecisionService()
    port = free_port()
    servers: list[grpc.Server] = []
    timer = threading.Timer(0.3, lambda: servers.append(start_server(service, port)[0]))
    timer.start()
    try:
        with EmmaClient(f"127.0.0.1:{port}", deadline=10, wait_for_ready=True) as client:
            started = time.monotonic()
            decision = client.decide("customer_id:c-1", touchpoint="app")
            elapsed = time.monotonic() - started
    finally:
        timer.join()
        for server in servers:
            server.stop(None)
    assert decision.event_id == "ev-1"
    assert service.attempts == 1
    # Reached soon after it came up, thanks to the SDK's short reconnect backoff.
    assert elapsed < 3


def test_unreachable_server_fails_fast_without_wait_for_ready() -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.01)
    with EmmaClient(f"127.0.0.1:{free_port()}", deadline=10, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(EmmaError) as caught:
            client.reward("ev-1", 1.0)
    assert caught.value.code == UNAVAILABLE
    assert time.monotonic() - started < 5
