"""Pseudonyms for customer identifiers, so logs, spans and metrics hold no personal data."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os

_DEFAULT_KEY = "emma-development-pseudonym-key"


@functools.cache
def pseudonym_key() -> bytes:
    """The keyed-hash secret: EMMA_PSEUDONYM_KEY, or a fixed development key; read once, as
    every setting is (a decision asks for it several times)."""
    return os.environ.get("EMMA_PSEUDONYM_KEY", _DEFAULT_KEY).encode()


def pseudonymise(identifier: str, key: bytes | None = None) -> str:
    """A stable, non-reversible pseudonym: 16 hex digits of HMAC-SHA256 over the identifier."""
    keyed = _keyed(key or pseudonym_key()).copy()
    keyed.update(identifier.encode())
    return "p-" + keyed.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    # The key's state, set up once: each pseudonym copies it rather than looking the
    # digest up and hashing the key again (several per decision).
    return hmac.new(key, digestmod=hashlib.sha256)
