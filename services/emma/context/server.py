"""The context service's gRPC server: build_server for tests and main for the process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from emma.context import clock
from emma.context.almanac import Almanac
from emma.context.calendar import HolidayCalendar
from emma.context.config import ContextConfig
from emma.context.providers import SignalProvider, StaticFileProvider
from emma.context.resolver import ContextResolver
from emma.context.seasons import load_retail_seasons
from emma.context.service import ContextService
from emma.context.stores import load_stores
from emma.context.v1 import context_pb2, context_pb2_grpc
from emma.runtime.main import run_service
from emma.runtime.server import EmmaServer, create_server

SERVICE_NAME = context_pb2.DESCRIPTOR.services_by_name["ContextService"].full_name


def build_resolver(config: ContextConfig) -> ContextResolver:
    """The pure resolver over the configured store registry and calendars."""
    return ContextResolver(
        load_stores(config.stores_path),
        dayparts=clock.parse_dayparts(config.dayparts),
        default_time_zone=config.default_time_zone,
        default_country=config.default_country,
        almanac=Almanac(
            HolidayCalendar(config.holiday_language),
            load_retail_seasons(config.retail_seasons_path),
        ),
        region_radius_m=config.region_radius_m,
    )


def build_providers(config: ContextConfig) -> list[SignalProvider]:
    providers: list[SignalProvider] = []
    if config.signals_path:
        providers.append(StaticFileProvider.from_file(Path(config.signals_path)))
    return providers


def build_service(
    config: ContextConfig, providers: Sequence[SignalProvider] | None = None
) -> ContextService:
    """The servicer over the configured data files; `providers` replaces the configured
    signal providers (tests, embedding)."""
    return ContextService(
        build_resolver(config),
        build_providers(config) if providers is None else providers,
        config.provider_timeout_s,
    )


def build_server(
    config: ContextConfig, providers: Sequence[SignalProvider] | None = None
) -> tuple[EmmaServer, int]:
    """A context server bound to config.host:config.port; call inside a running event loop.

    `providers` replaces the configured signal providers (tests, embedding).
    """
    service = build_service(config, providers)
    # Loading the time zone polygons takes a moment; do it before the first request waits.
    clock.zone_finder()
    server, port = create_server(config.host, config.port, [SERVICE_NAME])
    context_pb2_grpc.add_ContextServiceServicer_to_server(service, server.grpc_server)
    return server, port


def main(argv: Sequence[str] | None = None) -> int:
    return run_service("emma-context", ContextConfig, build_server, argv)
