"""The context service: local time, daypart, season, holidays and stores."""

from typing import TYPE_CHECKING

from emma.runtime.lazy import lazy_exports

if TYPE_CHECKING:
    from emma.context.config import ContextConfig
    from emma.context.features import Feature, context_features
    from emma.context.providers import SignalProvider, StaticFileProvider, collect_signals
    from emma.context.resolver import ContextRequest, ContextResolver, ResolvedContext
    from emma.context.server import SERVICE_NAME, build_resolver, build_server, main
    from emma.context.service import ContextService
    from emma.context.stores import NearbyStore, Store, StoreRegistry, load_stores

__all__ = [
    "SERVICE_NAME",
    "ContextConfig",
    "ContextRequest",
    "ContextResolver",
    "ContextService",
    "Feature",
    "NearbyStore",
    "ResolvedContext",
    "SignalProvider",
    "StaticFileProvider",
    "Store",
    "StoreRegistry",
    "build_resolver",
    "build_server",
    "collect_signals",
    "context_features",
    "load_stores",
    "main",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "ContextConfig": "emma.context.config",
        "Feature": "emma.context.features",
        "context_features": "emma.context.features",
        "SignalProvider": "emma.context.providers",
        "StaticFileProvider": "emma.context.providers",
        "collect_signals": "emma.context.providers",
        "ContextRequest": "emma.context.resolver",
        "ContextResolver": "emma.context.resolver",
        "ResolvedContext": "emma.context.resolver",
        "SERVICE_NAME": "emma.context.server",
        "build_resolver": "emma.context.server",
        "build_server": "emma.context.server",
        "main": "emma.context.server",
        "ContextService": "emma.context.service",
        "NearbyStore": "emma.context.stores",
        "Store": "emma.context.stores",
        "StoreRegistry": "emma.context.stores",
        "load_stores": "emma.context.stores",
    },
)
