"""The profile service: a customer data platform on Redis."""

from emma.profile.config import ProfileConfig
from emma.profile.consent import status_for as consent_status_for
from emma.profile.server import SERVICE_NAME, build_server, main
from emma.profile.service import ProfileServicer
from emma.profile.store import ProfileStore

__all__ = [
    "SERVICE_NAME",
    "ProfileConfig",
    "ProfileServicer",
    "ProfileStore",
    "build_server",
    "consent_status_for",
    "main",
]
