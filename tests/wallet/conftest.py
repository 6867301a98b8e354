"""The wallet tests use the moments mesh of the trigger tests."""

from tests.triggers.conftest import moments

__all__ = ["moments"]
