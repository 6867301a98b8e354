"""The context service: local time, daypart, season, holidays and stores."""

from typing import TYPE_CHECKING

from emma.runtime.lazy import lazy_exports

if TYPE_CHECKING:
    from emma.context.almanac import Almanac
    from emma.context.config import ContextConfig
    from emma.context.features import Feature, context_features
    from emma.context.providers import (
        ImmediateSignalProvider,
        SignalCollector,
        SignalProvider,
        StaticFileProvider,
        collect_signals,
    )
    from emma.context.resolver import ContextRequest, ContextResolver, ResolvedContext
    from emma.context.seasons import RetailCalendar, load_retail_seasons
    from emma.context.server import (
        SERVICE_NAME,
        build_resolver,
        build_server,
        build_service,
        main,
    )
    from emma.context.service import ContextService
    from emma.context.stores import NearbyStore, Store, StoreRegistry, load_stores

__all__ = [
    "SERVICE_NAME",
    "Almanac",
    "ContextConfig",
    "ContextRequest",
    "ContextResolver",
    "ContextService",
    "Feature",
    "ImmediateSignalProvider",
    "NearbyStore",
    "ResolvedContext",
    "RetailCalendar",
    "SignalCollector",
    "SignalProvider",
    "StaticFileProvider",
    "Store",
    "StoreRegistry",
    "build_resolver",
    "build_server",
    "build_service",
    "collect_signals",
    "context_features",
    "load_retail_seasons",
    "load_stores",
    "main",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Almanac": "emma.context.almanac",
        "ContextConfig": "emma.context.config",
        "Feature": "emma.context.features",
        "context_features": "emma.context.features",
        "ImmediateSignalProvider": "emma.context.providers",
        "SignalCollector": "emma.context.providers",
        "SignalProvider": "emma.context.providers",
        "StaticFileProvider": "emma.context.providers",
        "collect_signals": "emma.context.providers",
        "ContextRequest": "emma.context.resolver",
        "ContextResolver": "emma.context.resolver",
        "ResolvedContext": "emma.context.resolver",
        "SERVICE_NAME": "emma.context.server",
        "build_resolver": "emma.context.server",
        "build_server": "emma.context.server",
        "build_service": "emma.context.server",
        "RetailCalendar": "emma.context.seasons",
        "load_retail_seasons": "emma.context.seasons",
        "main": "emma.context.server",
        "ContextService": "emma.context.service",
        "NearbyStore": "emma.context.stores",
        "Store": "emma.context.stores",
        "StoreRegistry": "emma.context.stores",
        "load_stores": "emma.context.stores",
    },
)
