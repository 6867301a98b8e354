"""Generated requests to every ContextService RPC: OK or INVALID_ARGUMENT naming the field
(NOT_FOUND naming it for an unknown store)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emma.context.v1 import context_pb2
from tests.fuzz.checks import call, check_status
from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.strategies import requests
from tests.fuzz.valid import near_valid

RPCS = [
    ("Resolve", context_pb2.ResolveRequest, ()),
    ("GetStore", context_pb2.GetStoreRequest, (grpc.StatusCode.NOT_FOUND,)),
    ("FindNearestStores", context_pb2.FindNearestStoresRequest, ()),
]


@pytest.mark.parametrize(("rpc", "request_type", "also"), RPCS, ids=[r for r, _, _ in RPCS])
def test_requests(context_stub: Any, rpc: str, request_type: type, also: tuple[Any, ...]) -> None:
    @fuzz_settings
    @given(request=st.one_of(requests(request_type), near_valid(request_type)))
    def run(request: Any) -> None:
        code, details, _ = call(getattr(context_stub, rpc), request)
        check_status(
            f"context.{rpc}", request.DESCRIPTOR, code, details, request.ByteSize(), also=also
        )

    run()
