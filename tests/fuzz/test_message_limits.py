"""Message size limits: from configuration, on servers and mesh channels; an oversize
request gets RESOURCE_EXHAUSTED and a status message never outgrows gRPC's headers."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import grpc
import pytest

from emma.common.v1 import common_pb2
from emma.context import server as context_server
from emma.context.config import ContextConfig
from emma.context.v1 import context_pb2, context_pb2_grpc
from emma.profile.v1 import profile_pb2
from emma.runtime.channels import mesh_channel
from emma.runtime.config import ConfigError
from emma.runtime.errors import MAX_MESSAGE_CHARS, InvalidArgument, status_message
from emma.runtime.limits import DEFAULT_MESSAGE_BYTES, MessageLimits, load_message_limits

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SMALL = 64 * 1024


def test_the_limits_default_to_4_mib_both_ways() -> None:
    limits = load_message_limits({})
    assert (limits.max_receive_bytes, limits.max_send_bytes) == (DEFAULT_MESSAGE_BYTES,) * 2
    assert limits.options() == [
        ("grpc.max_receive_message_length", DEFAULT_MESSAGE_BYTES),
        ("grpc.max_send_message_length", DEFAULT_MESSAGE_BYTES),
    ]


def test_the_limits_come_from_the_environment() -> None:
    limits = load_message_limits(
        {"EMMA_MAX_RECEIVE_MESSAGE_BYTES": "65536", "EMMA_MAX_SEND_MESSAGE_BYTES": "131072"}
    )
    assert limits == MessageLimits(65536, 131072)


@pytest.mark.parametrize("value", ["0", "-1", "100", str(2**31), "4MiB"])
def test_a_bad_limit_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="EMMA_MAX_RECEIVE_MESSAGE_BYTES"):
        load_message_limits({"EMMA_MAX_RECEIVE_MESSAGE_BYTES": value})


def test_the_readme_documents_the_limits() -> None:
    for field in dataclasses.fields(MessageLimits):
        assert f"| `{field.metadata['env']}` |" in README


def test_an_oversize_request_to_the_mesh_gets_resource_exhausted(profile_stub: Any) -> None:
    request = profile_pb2.GetProfileRequest(
        customer=common_pb2.CustomerRef(kind=2, value="x" * (DEFAULT_MESSAGE_BYTES + 1))
    )
    with pytest.raises(grpc.RpcError) as caught:
        profile_stub.GetProfile(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def _resolve(device: str) -> context_pb2.ResolveRequest:
    return context_pb2.ResolveRequest(store_id="berlin-mitte", device=device)


async def test_a_configured_server_limit_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMMA_MAX_RECEIVE_MESSAGE_BYTES", str(SMALL))
    server, port = context_server.build_server(dataclasses.replace(ContextConfig(), port=0))
    await server.start()
    # No limit on the caller's side: the server's own limit must answer.
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)]
    )
    try:
        stub = context_pb2_grpc.ContextServiceStub(channel)
        answer = await stub.Resolve(_resolve("x" * (SMALL - 1024)), timeout=30)
        assert answer.context.store.store_id == "berlin-mitte"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Resolve(_resolve("x" * SMALL), timeout=30)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await channel.close(None)
        await server.stop(0)


async def test_mesh_channels_apply_the_configured_send_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A mesh channel refuses to send beyond EMMA_MAX_SEND_MESSAGE_BYTES itself."""
    server, port = context_server.build_server(dataclasses.replace(ContextConfig(), port=0))
    await server.start()
    monkeypatch.setenv("EMMA_MAX_SEND_MESSAGE_BYTES", str(SMALL))
    channel = mesh_channel(f"127.0.0.1:{port}")
    try:
        stub = context_pb2_grpc.ContextServiceStub(channel)
        await stub.Resolve(_resolve("x" * (SMALL - 1024)), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Resolve(_resolve("x" * SMALL), timeout=30)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await channel.close(None)
        await server.stop(0)


def test_a_status_message_quoting_a_huge_value_is_cut_and_keeps_its_field() -> None:
    message = status_message(InvalidArgument("store_id", f"unknown store {'😀' * 100_000!r}"))
    assert len(message) == MAX_MESSAGE_CHARS
    assert re.match(r"store_id: unknown store '😀+\.\.\. \(truncated\)$", message)
    assert status_message(InvalidArgument("store_id", "short")) == "store_id: short"


def test_an_error_quoting_a_huge_value_arrives_as_invalid_argument(context_stub: Any) -> None:
    """Was RESOURCE_EXHAUSTED: the quoted value made the status header exceed 8 KiB."""
    with pytest.raises(grpc.RpcError) as caught:
        context_stub.Resolve(context_pb2.ResolveRequest(time_zone="🕰" * 100_000), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("time_zone: ")
    with pytest.raises(grpc.RpcError) as caught:
        context_stub.GetStore(context_pb2.GetStoreRequest(store_id="x" * 100_000), timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith("store_id: unknown store")
