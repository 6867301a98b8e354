"""The context service: local time, daypart, season, holidays and stores."""

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
