"""The ContextService servicer: proto in, the pure resolver, proto out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import grpc
from opentelemetry import trace

from emma.context import convert
from emma.context.features import Feature, FeatureGroup, feature_groups
from emma.context.geo import check_point
from emma.context.providers import SignalCollector, SignalProvider
from emma.context.resolver import ContextRequest, ContextResolver, ResolvedContext
from emma.context.v1 import context_pb2, context_pb2_grpc
from emma.runtime.errors import InvalidArgument, NotFound, maps_domain_errors

Context = grpc.aio.ServicerContext[Any, Any]


# The share of the caller's remaining time signal providers may use; the rest is for
# sending the answer back in time, as a late answer is lost with its signals.
_PROVIDER_SHARE = 0.5


def _provider_time(remaining_s: float | None) -> float | None:
    """Seconds providers may take of the caller's remaining time; None without a deadline."""
    return None if remaining_s is None else remaining_s * _PROVIDER_SHARE


class Resolution(NamedTuple):
    """A request's context, its providers' signals, its features in groups (in the
    answer's order, signals last) and the providers skipped for want of time."""

    context: ResolvedContext
    signals: Sequence[Feature]
    groups: Sequence[FeatureGroup]
    skipped: Sequence[str]


class ContextService(context_pb2_grpc.ContextServiceServicer):
    """Answers Resolve, GetStore and FindNearestStores; holds no customer data."""

    def __init__(
        self,
        resolver: ContextResolver,
        providers: Sequence[SignalProvider] = (),
        provider_timeout_s: float = 0.05,
    ) -> None:
        self.resolver = resolver
        self.signals = SignalCollector(providers, provider_timeout_s)

    @maps_domain_errors
    async def Resolve(
        self, request: context_pb2.ResolveRequest, context: Context
    ) -> context_pb2.ResolveResponse:
        return await self.answer(request, context.time_remaining())

    async def answer(
        self, request: context_pb2.ResolveRequest, remaining_s: float | None
    ) -> context_pb2.ResolveResponse:
        """Resolve's answer, for a caller with `remaining_s` left (None: no deadline)."""
        found = await self.resolution(convert.context_request(request), remaining_s)
        return convert.resolve_response(
            found.context, request.touchpoint, found.signals, found.groups, found.skipped
        )

    async def resolution(self, request: ContextRequest, remaining_s: float | None) -> Resolution:
        """What Resolve answers, before it is a message: what the gRPC method and an
        in-process caller (the decision service) both run."""
        resolved = self.resolver.resolve(request)
        if self.signals.immediate_only:  # the usual case: no tasks, no timers
            signals, skipped = self.signals.collect_now(resolved)
        else:
            signals, skipped = await self.signals.collect(resolved, _provider_time(remaining_s))
        # Only what a trace cannot tell otherwise, and only when there is something: each
        # attribute costs a lock and a check in the tracing SDK, some 1.5 us.
        if resolved.store is not None or skipped:
            span = trace.get_current_span()
            if span.is_recording():
                if resolved.store is not None:
                    span.set_attribute("emma.context.store_id", resolved.store.store_id)
                if skipped:
                    span.set_attribute("emma.context.skipped_providers", skipped)
        return Resolution(resolved, signals, feature_groups(resolved, signals), skipped)

    @maps_domain_errors
    async def GetStore(
        self, request: context_pb2.GetStoreRequest, context: Context
    ) -> context_pb2.GetStoreResponse:
        if not request.store_id:
            raise InvalidArgument("store_id", "must not be empty")
        store = self.resolver.stores.get(request.store_id)
        if store is None:
            raise NotFound(f"store_id: unknown store {request.store_id!r}")
        return context_pb2.GetStoreResponse(store=convert.store_proto(store))

    @maps_domain_errors
    async def FindNearestStores(
        self, request: context_pb2.FindNearestStoresRequest, context: Context
    ) -> context_pb2.FindNearestStoresResponse:
        if not request.HasField("location"):
            raise InvalidArgument("location", "must be given")
        check_point(request.location.latitude, request.location.longitude, "location")
        if request.limit < 0:
            raise InvalidArgument("limit", "must be >= 0")
        if not (math.isfinite(request.max_distance_m) and request.max_distance_m >= 0):
            raise InvalidArgument("max_distance_m", "must be a number >= 0")
        nearest = self.resolver.stores.nearest(
            request.location.latitude,
            request.location.longitude,
            limit=request.limit or 1,
            max_distance_m=request.max_distance_m,
        )
        return context_pb2.FindNearestStoresResponse(
            stores=[convert.nearby_proto(near) for near in nearest]
        )
