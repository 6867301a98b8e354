"""The profile and context services as the pipeline's dependencies, over reused mesh channels."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from emma.context.v1 import context_pb2_grpc
from emma.decision import convert
from emma.decision.domain import CustomerView, DecideInput, Situation
from emma.profile.v1 import profile_pb2_grpc


class MeshDependencies:
    """Calls GetProfile and Resolve, each with what is left of the budget as its gRPC timeout."""

    def __init__(self, profile: grpc.aio.Channel, context: grpc.aio.Channel) -> None:
        self._profile = profile_pb2_grpc.ProfileServiceStub(profile)
        self._context = context_pb2_grpc.ContextServiceStub(context)

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        response = await self._profile.GetProfile(
            convert.profile_request(request), timeout=timeout_s
        )
        return convert.customer_view(response, datetime.now(UTC))

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        response = await self._context.Resolve(convert.resolve_request(request), timeout=timeout_s)
        return convert.situation(response, request)
