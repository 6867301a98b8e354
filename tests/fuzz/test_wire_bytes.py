"""Corrupted request bytes to every RPC: valid requests with bytes flipped, cut, inserted,
or bytes that are no message at all. Each gets OK or INVALID_ARGUMENT (naming the field,
or the request when its bytes are no valid message), never UNKNOWN, and writes nothing
when refused."""

from __future__ import annotations

import grpc
import pytest
import redis
from google.protobuf import descriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from emma.context.v1 import context_pb2
from emma.decision.v1 import decision_pb2
from emma.profile.v1 import profile_pb2
from tests.fuzz.checks import changed_keys, check_status, field_path, snapshot
from tests.fuzz.conftest import EXAMPLES, fuzz_settings, trim
from tests.fuzz.valid import near_valid

NOT_FOUND = (grpc.StatusCode.NOT_FOUND,)
PROFILE, CONTEXT, DECISION = (
    "emma.profile.v1.ProfileService",
    "emma.context.v1.ContextService",
    "emma.decision.v1.DecisionService",
)
RPCS: list[tuple[str, str, type, tuple[grpc.StatusCode, ...]]] = [
    ("profile", f"{PROFILE}/GetProfile", profile_pb2.GetProfileRequest, ()),
    ("profile", f"{PROFILE}/LinkIdentity", profile_pb2.LinkIdentityRequest, NOT_FOUND),
    ("profile", f"{PROFILE}/RecordEvents", profile_pb2.RecordEventsRequest, ()),
    ("profile", f"{PROFILE}/UpdatePreferences", profile_pb2.UpdatePreferencesRequest, ()),
    ("profile", f"{PROFILE}/UpdateConsent", profile_pb2.UpdateConsentRequest, ()),
    ("profile", f"{PROFILE}/ExportCustomer", profile_pb2.ExportCustomerRequest, ()),
    ("profile", f"{PROFILE}/EraseCustomer", profile_pb2.EraseCustomerRequest, ()),
    ("context", f"{CONTEXT}/Resolve", context_pb2.ResolveRequest, ()),
    ("context", f"{CONTEXT}/GetStore", context_pb2.GetStoreRequest, NOT_FOUND),
    ("context", f"{CONTEXT}/FindNearestStores", context_pb2.FindNearestStoresRequest, ()),
    ("decision", f"{DECISION}/Decide", decision_pb2.DecideRequest, ()),
    ("decision", f"{DECISION}/Activate", decision_pb2.ActivateRequest, NOT_FOUND),
    ("decision", f"{DECISION}/Reward", decision_pb2.RewardRequest, NOT_FOUND),
]
STREAM = f"{PROFILE}/RecordEventStream"


def field_or_request(desc: descriptor.Descriptor, details: str) -> str | None:
    if details.startswith("request: not a valid message: "):
        return "request"
    return field_path(desc, details)


@st.composite
def corrupted(draw: st.DrawFn, request_type: type) -> bytes:
    """Bytes of a (near) valid request, corrupted a few times, or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    data = bytearray(draw(near_valid(request_type)).SerializeToString())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if how == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:]
    return bytes(data)


wire_settings = settings(fuzz_settings, max_examples=max(EXAMPLES // 4, 25))


def _identity(data: bytes) -> bytes:
    return data


@pytest.mark.parametrize(
    ("service", "method", "request_type", "also"),
    RPCS,
    ids=[m.split("/")[1] for _, m, _, _ in RPCS],
)
def test_corrupted_requests(
    channels: dict[str, grpc.Channel],
    redis_client: redis.Redis,
    service: str,
    method: str,
    request_type: type,
    also: tuple[grpc.StatusCode, ...],
) -> None:
    call = channels[service].unary_unary(
        f"/{method}", request_serializer=_identity, response_deserializer=_identity
    )

    @wire_settings
    @given(data=corrupted(request_type))
    def run(data: bytes) -> None:
        trim(redis_client)
        before = snapshot(redis_client)
        try:
            call(data, timeout=60)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
        rpc = "wire." + method.split("/")[1]
        desc = request_type.DESCRIPTOR
        check_status(rpc, desc, code, details, len(data), also=also, path_of=field_or_request)
        if code != grpc.StatusCode.OK:
            wrote = changed_keys(before, snapshot(redis_client))
            assert not wrote, f"{rpc} refused ({details}) but wrote {wrote}"

    run()


def test_corrupted_batches_in_a_stream(
    channels: dict[str, grpc.Channel], redis_client: redis.Redis
) -> None:
    call = channels["profile"].stream_unary(
        f"/{STREAM}", request_serializer=_identity, response_deserializer=_identity
    )

    @wire_settings
    @given(first=corrupted(profile_pb2.RecordEventStreamRequest))
    def run(first: bytes) -> None:
        trim(redis_client)
        before = snapshot(redis_client)
        try:
            call(iter([first]), timeout=60)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
        desc = profile_pb2.RecordEventStreamRequest.DESCRIPTOR
        inner = details.removeprefix("batches[0].")
        check_status(
            "wire.RecordEventStream", desc, code, inner, len(first), path_of=field_or_request
        )
        if code != grpc.StatusCode.OK:
            wrote = changed_keys(before, snapshot(redis_client))
            assert not wrote, f"refused ({details}) but wrote {wrote}"

    run()
