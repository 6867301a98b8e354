"""The SDK against the real decision stack (profile, context, decision on a real Redis)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from emma_client import AsyncEmmaClient, EmmaClient, EmmaError
from tests.clients.stack import InProcessStack, running_stack

TILL_CHANNELS = {"receipt", "cashier_prompt", "store_screen"}


@pytest.fixture(scope="module")
def stack() -> Iterator[InProcessStack]:
    with running_stack() as stack:
        yield stack


def test_sync_decide_at_the_till(stack: InProcessStack) -> None:
    with EmmaClient(stack.decision_address, deadline=10) as client:
        decision = client.decide(
            loyalty_card="4711",
            touchpoint="pos",
            store_id="berlin-mitte",
            basket=["brezel:bakery:2:1.40", ("emmentaler", "cheese", 1, 4.99)],
            budget_ms=2000,
        )
    assert decision.event_id
    assert decision.offer_id
    assert decision.title
    assert decision.channel in TILL_CHANNELS
    # Empty when this process has no tracer provider; the e2e tests check real trace ids.
    assert decision.trace_id == "" or re.fullmatch(r"[0-9a-f]{32}", decision.trace_id)
    assert 0 < decision.probability <= 1
    assert decision.send_at is not None
    assert abs(decision.send_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert decision.degraded == ()


def test_sync_allowed_channels_are_honoured(stack: InProcessStack) -> None:
    with EmmaClient(stack.decision_address, deadline=10) as client:
        for _ in range(5):
            decision = client.decide(
                "customer_id:c-sdk",
                touchpoint="pos",
                store_id="koeln-dom",
                allowed_channels=["receipt"],
            )
            assert decision.channel == "receipt"


def test_sync_reward_and_activate(stack: InProcessStack) -> None:
    with EmmaClient(stack.decision_address, deadline=10) as client:
        decision = client.decide("customer_id:c-sdk", touchpoint="app", deferred_activation=True)
        assert client.activate(decision.event_id) is True
        assert client.activate(decision.event_id) is False
        assert client.reward(decision.event_id, 1.0, "click") is True
        assert client.reward("no-such-event", 1.0, "click") is False


async def test_async_client_decides_and_rewards(stack: InProcessStack) -> None:
    async with AsyncEmmaClient(stack.decision_address, deadline=10) as client:
        decision = await client.decide(("app_user_id", "u-sdk"), touchpoint="web")
        assert decision.channel in {"web", "email"}
        assert await client.reward(decision.event_id, 2.5, kind="purchase") is True


async def test_server_side_invalid_argument_is_an_emma_error(stack: InProcessStack) -> None:
    async with AsyncEmmaClient(stack.decision_address, deadline=10) as client:
        with pytest.raises(EmmaError) as caught:
            await client.decide("customer_id:c-sdk", touchpoint="pos", location=(123.0, 0.0))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "latitude" in caught.value.details


def test_the_readme_example_runs(stack: InProcessStack, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "the README shows how to call Decide from Python"
    code = match.group(1).replace("127.0.0.1:50051", stack.decision_address)
    exec(compile(code, "README.md", "exec"), {})  # our own documentation, run as written
    printed = capsys.readouterr().out.split()
    # offer_id, then the channel: a till channel, as the example asks at the till.
    assert printed[0]
    assert printed[1] in TILL_CHANNELS
