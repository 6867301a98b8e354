"""The profile and context services as the pipeline's dependencies, over reused mesh channels."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from emma.context.v1 import context_pb2_grpc
from emma.decision import convert
from emma.decision.context_cache import ContextCache
from emma.decision.domain import CustomerView, DecideInput, Situation
from emma.profile.v1 import profile_pb2_grpc


class MeshDependencies:
    """Calls GetProfile and Resolve, each with what is left of the budget as its gRPC timeout.

    With `context_cache_entries` > 0, till requests reuse the context of their store and
    minute (emma.decision.context_cache) instead of calling Resolve every time.
    """

    def __init__(
        self,
        profile: grpc.aio.Channel,
        context: grpc.aio.Channel,
        *,
        context_cache_entries: int = 0,
    ) -> None:
        self._profile = profile_pb2_grpc.ProfileServiceStub(profile)
        self._context = context_pb2_grpc.ContextServiceStub(context)
        self.context_cache = (
            ContextCache(self._resolve, context_cache_entries) if context_cache_entries else None
        )

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        response = await self._profile.GetProfile(
            convert.profile_request(request), timeout=timeout_s
        )
        return convert.customer_view(response, datetime.now(UTC))

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        if self.context_cache is not None:
            return await self.context_cache.situation(request, timeout_s)
        return await self._resolve(request, timeout_s)

    async def _resolve(self, request: DecideInput, timeout_s: float) -> Situation:
        response = await self._context.Resolve(convert.resolve_request(request), timeout=timeout_s)
        return convert.situation(response, request)
