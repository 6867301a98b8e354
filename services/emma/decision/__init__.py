"""The decision service: a contextual bandit over offer x channel."""

from typing import TYPE_CHECKING

from emma.runtime.lazy import lazy_exports

if TYPE_CHECKING:
    from emma.decision.catalog import Catalog, CatalogError, Offer, load_catalog
    from emma.decision.config import DecisionConfig
    from emma.decision.server import SERVICE_NAME, build_server, main

__all__ = [
    "SERVICE_NAME",
    "Catalog",
    "CatalogError",
    "DecisionConfig",
    "Offer",
    "build_server",
    "load_catalog",
    "main",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Catalog": "emma.decision.catalog",
        "CatalogError": "emma.decision.catalog",
        "Offer": "emma.decision.catalog",
        "load_catalog": "emma.decision.catalog",
        "DecisionConfig": "emma.decision.config",
        "SERVICE_NAME": "emma.decision.server",
        "build_server": "emma.decision.server",
        "main": "emma.decision.server",
    },
)
