"""Generated requests to every DecisionService RPC: OK or INVALID_ARGUMENT naming the field
(NOT_FOUND naming it for an unknown decision), and a refused request writes nothing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2
from tests.fuzz.checks import call, changed_keys, check_status, snapshot
from tests.fuzz.conftest import fuzz_settings, trim
from tests.fuzz.strategies import requests
from tests.fuzz.valid import near_valid


@pytest.fixture(scope="session")
def event_ids(decision_stub: Any) -> list[str]:
    """Ids of real decisions, for Activate and Reward to find now and then."""
    ids = []
    for value, touchpoint in (("1001", 1), ("4711", 3), ("d-9", 2)):
        request = decision_pb2.DecideRequest(
            customer=common_pb2.CustomerRef(kind=2, value=value),
            touchpoint=touchpoint,
            deferred_activation=True,
        )
        ids.append(decision_stub.Decide(request, timeout=30).event_id)
    return ids


def exercise(
    stub: Any, client: redis.Redis, rpc: str, request: Any, also: tuple[Any, ...] = ()
) -> None:
    trim(client)
    before = snapshot(client)
    code, details, _ = call(getattr(stub, rpc), request)
    check_status(
        f"decision.{rpc}", request.DESCRIPTOR, code, details, request.ByteSize(), also=also
    )
    if code != grpc.StatusCode.OK:
        after = snapshot(client)
        wrote = changed_keys(before, after)
        assert not wrote, f"decision.{rpc} refused ({details}) but wrote {wrote}"


DECIDE = decision_pb2.DecideRequest


def test_decide(decision_stub: Any, redis_client: redis.Redis) -> None:
    @fuzz_settings
    @given(request=st.one_of(requests(DECIDE), near_valid(DECIDE), near_valid(DECIDE)))
    def run(request: Any) -> None:
        exercise(decision_stub, redis_client, "Decide", request)

    run()


@pytest.mark.parametrize(
    ("rpc", "request_type"),
    [("Activate", decision_pb2.ActivateRequest), ("Reward", decision_pb2.RewardRequest)],
)
def test_feedback(
    decision_stub: Any,
    redis_client: redis.Redis,
    event_ids: list[str],
    rpc: str,
    request_type: type,
) -> None:
    @fuzz_settings
    @given(
        request=st.one_of(requests(request_type), near_valid(request_type)),
        real=st.one_of(st.none(), st.sampled_from(event_ids)),
    )
    def run(request: Any, real: str | None) -> None:
        if real is not None:
            request.event_id = real
        exercise(decision_stub, redis_client, rpc, request, also=(grpc.StatusCode.NOT_FOUND,))

    run()
