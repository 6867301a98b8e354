"""The profile service: a customer data platform on Redis."""

from typing import TYPE_CHECKING

from emma.runtime.lazy import lazy_exports

if TYPE_CHECKING:
    from emma.profile.config import ProfileConfig
    from emma.profile.server import SERVICE_NAME, build_server, main
    from emma.profile.service import ProfileServicer
    from emma.profile.store import ProfileStore

__all__ = [
    "SERVICE_NAME",
    "ProfileConfig",
    "ProfileServicer",
    "ProfileStore",
    "build_server",
    "main",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "ProfileConfig": "emma.profile.config",
        "SERVICE_NAME": "emma.profile.server",
        "build_server": "emma.profile.server",
        "main": "emma.profile.server",
        "ProfileServicer": "emma.profile.service",
        "ProfileStore": "emma.profile.store",
    },
)
