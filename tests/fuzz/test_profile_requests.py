"""Generated requests to every ProfileService RPC: OK or INVALID_ARGUMENT naming the field,
and a rejected request writes nothing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from emma.profile.v1 import profile_pb2
from tests.fuzz.checks import (
    call,
    changed_keys,
    check_status,
    contents,
    restore,
    snapshot,
    stream_field_path,
)
from tests.fuzz.conftest import fuzz_settings, trim
from tests.fuzz.strategies import requests
from tests.fuzz.valid import near_valid

# Codes besides OK and INVALID_ARGUMENT an RPC answers by design, naming the field too.
ALSO = {"LinkIdentity": (grpc.StatusCode.NOT_FOUND,)}
UNARY = [
    ("GetProfile", profile_pb2.GetProfileRequest),
    ("LinkIdentity", profile_pb2.LinkIdentityRequest),
    ("RecordEvents", profile_pb2.RecordEventsRequest),
    ("UpdatePreferences", profile_pb2.UpdatePreferencesRequest),
    ("UpdateConsent", profile_pb2.UpdateConsentRequest),
    ("ExportCustomer", profile_pb2.ExportCustomerRequest),
    ("EraseCustomer", profile_pb2.EraseCustomerRequest),
]


def exercise(stub: Any, client: redis.Redis, rpc: str, request: Any) -> grpc.StatusCode:
    """One call: its status must be acceptable, and a refused call must leave Redis as it was."""
    trim(client)
    before = snapshot(client)
    code, details, _ = call(getattr(stub, rpc), request)
    check_status(
        f"profile.{rpc}",
        request.DESCRIPTOR,
        code,
        details,
        request.ByteSize(),
        also=ALSO.get(rpc, ()),
    )
    if code != grpc.StatusCode.OK:
        after = snapshot(client)
        wrote = changed_keys(before, after)
        assert not wrote, f"profile.{rpc} refused ({details}) but wrote {wrote}"
    return code


@pytest.mark.parametrize(("rpc", "request_type"), UNARY, ids=[rpc for rpc, _ in UNARY])
def test_unary_requests(
    profile_stub: Any, redis_client: redis.Redis, rpc: str, request_type: type
) -> None:
    @fuzz_settings
    @given(request=st.one_of(requests(request_type), near_valid(request_type)))
    def run(request: Any) -> None:
        exercise(profile_stub, redis_client, rpc, request)

    run()


BATCH = profile_pb2.RecordEventStreamRequest
BATCHES = st.lists(
    st.one_of(requests(BATCH), near_valid(BATCH), near_valid(BATCH)), min_size=1, max_size=4
)


def test_record_event_stream(profile_stub: Any, redis_client: redis.Redis) -> None:
    """Batches before a refused one stay applied (each is all or nothing); the refused one
    and those after it leave nothing: the state is what the batches before it make alone."""

    @fuzz_settings
    @given(batches=BATCHES)
    def run(batches: list[profile_pb2.RecordEventStreamRequest]) -> None:
        trim(redis_client)
        before = snapshot(redis_client)
        try:
            profile_stub.RecordEventStream.with_call(iter(batches), timeout=60)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
        size = max(batch.ByteSize() for batch in batches)
        check_status(
            "profile.RecordEventStream",
            profile_pb2.RecordEventStreamRequest.DESCRIPTOR,
            code,
            details,
            size,
            path_of=stream_field_path,
        )
        if code != grpc.StatusCode.INVALID_ARGUMENT:
            return
        refused = int(details.split("]", 1)[0].removeprefix("batches["))
        if refused == 0:
            after = snapshot(redis_client)
            assert before == after, f"refused first batch wrote {changed_keys(before, after)}"
            return
        after = contents(redis_client)
        restore(redis_client, before)
        profile_stub.RecordEventStream.with_call(iter(batches[:refused]), timeout=60)
        alone = contents(redis_client)
        assert alone == after, f"refused batch {refused} wrote {changed_keys(alone, after)}"

    run()
