"""The decision service: a contextual bandit over offer x channel."""

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
