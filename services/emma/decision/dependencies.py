"""Where the pipeline gets profiles and context: read in process, or from the services."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime

import grpc
from opentelemetry import trace

from emma.context import clock
from emma.context.config import ContextConfig
from emma.context.server import build_service
from emma.context.service import ContextService
from emma.context.v1 import context_pb2_grpc
from emma.decision import convert
from emma.decision.config import DecisionConfig
from emma.decision.context_cache import ContextCache
from emma.decision.domain import CustomerView, DecideInput, Situation
from emma.decision.profile_view import customer_view_of
from emma.decision.situation_view import context_request, situation_of
from emma.profile.config import ProfileConfig
from emma.profile.reader import ProfileReader
from emma.profile.v1 import profile_pb2_grpc
from emma.runtime.channels import mesh_channel
from emma.runtime.config import load_config
from emma.runtime.tracing import child_span

tracer = trace.get_tracer("emma.decision")

# Seconds a warm-up may take: connecting ahead of the first Decide, whose budget would not
# cover a TCP (and HTTP/2 or TLS) handshake.
WARM_UP_S = 10.0


def connect_dependencies(
    config: DecisionConfig, environ: Mapping[str, str] | None = None
) -> ConnectedDependencies:
    """The dependencies `config.dependencies` names. In process, the profile and context
    settings are read from `environ` (default: this process's) as those services read them,
    with the profile store at `config.profile_store_url`."""
    cache = config.context_cache_entries
    if config.dependencies == "services":
        return MeshDependencies(
            mesh_channel(config.profile_addr),
            mesh_channel(config.context_addr),
            context_cache_entries=cache,
        )
    profile_config = dataclasses.replace(
        load_config(ProfileConfig, [], environ), redis_url=config.profile_store_url
    )
    context_service = build_service(load_config(ContextConfig, [], environ))
    # Loading the time zone polygons takes a moment; not in the first request's budget.
    clock.zone_finder()
    return InProcessDependencies(
        # A decision reads no identifiers, product affinities nor life events.
        ProfileReader.connect(profile_config, complete=False),
        context_service,
        context_cache_entries=cache,
    )


class ConnectedDependencies(abc.ABC):
    """The pipeline's two dependencies; with `context_cache_entries` > 0, till requests
    reuse the context of their store and minute (emma.decision.context_cache) instead of
    resolving it every time."""

    def __init__(self, context_cache_entries: int) -> None:
        self.context_cache = (
            ContextCache(self._resolve, context_cache_entries) if context_cache_entries else None
        )

    @abc.abstractmethod
    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        """The customer's profile as the pipeline sees it, within `timeout_s`."""

    def cached_situation(self, request: DecideInput) -> Situation | None:
        """The request's situation from the context cache, or None when it is not there."""
        return None if self.context_cache is None else self.context_cache.cached(request)

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        if self.context_cache is not None:
            return await self.context_cache.situation(request, timeout_s)
        return await self._resolve(request, timeout_s)

    @abc.abstractmethod
    async def _resolve(self, request: DecideInput, timeout_s: float) -> Situation:
        """The request's context, uncached."""

    @abc.abstractmethod
    async def warm_up(self) -> None:
        """Connects ahead of the first Decide (at most WARM_UP_S; failures are left to it)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Closes the connections."""


class MeshDependencies(ConnectedDependencies):
    """Calls GetProfile and Resolve over reused mesh channels, each with what is left of the
    budget as its gRPC timeout."""

    def __init__(
        self,
        profile: grpc.aio.Channel,
        context: grpc.aio.Channel,
        *,
        context_cache_entries: int = 0,
    ) -> None:
        super().__init__(context_cache_entries)
        self._channels = (profile, context)
        self._profile = profile_pb2_grpc.ProfileServiceStub(profile)
        self._context = context_pb2_grpc.ContextServiceStub(context)

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        response = await self._profile.GetProfile(
            convert.profile_request(request), timeout=timeout_s
        )
        return convert.customer_view(response, datetime.now(UTC))

    async def _resolve(self, request: DecideInput, timeout_s: float) -> Situation:
        response = await self._context.Resolve(convert.resolve_request(request), timeout=timeout_s)
        return convert.situation(response, request)

    async def warm_up(self) -> None:
        await asyncio.gather(*(_within_warm_up(c.channel_ready()) for c in self._channels))

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)


class InProcessDependencies(ConnectedDependencies):
    """Reads the profile from the profile store and resolves the context in this process,
    with the profile and context services' own code (ProfileReader.read,
    ContextService.resolution).

    The pipeline sees what GetProfile's and Resolve's answers would give it (the profile
    without the parts no decision reads); what is saved is two gRPC hops per decision,
    each costing more CPU and time in Python than the work behind it, and the messages.
    """

    def __init__(
        self,
        reader: ProfileReader,
        context: ContextService,
        *,
        context_cache_entries: int = 0,
    ) -> None:
        super().__init__(context_cache_entries)
        self._reader = reader
        self._context = context

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        now = datetime.now(UTC)
        # A span where the profile service's server span would be, over its Redis spans.
        with child_span(tracer, "emma.decision.read_profile"):
            profile, wallet = await self._reader.read(convert.profile_request(request), now)
        return customer_view_of(profile, wallet, now)

    async def _resolve(self, request: DecideInput, timeout_s: float) -> Situation:
        with child_span(tracer, "emma.decision.resolve_context"):
            found = await self._context.resolution(context_request(request), timeout_s)
        return situation_of(found, request)

    async def warm_up(self) -> None:
        await _within_warm_up(self._reader.warm_up())

    async def close(self) -> None:
        await self._reader.close()


async def _within_warm_up(step: Awaitable[None]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(step, WARM_UP_S)
