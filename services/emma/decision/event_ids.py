"""Decision event ids: UUIDv7 (RFC 9562) in hex, so an id tells when its decision was made."""

from __future__ import annotations

import os
import time

_MS_BITS = 48
_VERSION = 0x7
_VARIANT = 0b10


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_event_id(now_ms: int | None = None) -> str:
    """A fresh id: 48 bits of Unix milliseconds, then 74 random bits (version and variant
    set as RFC 9562 asks); ids of later decisions sort after earlier ones."""
    ms = _now_ms() if now_ms is None else now_ms
    return event_id_of(ms, int.from_bytes(os.urandom(10), "big"))


def event_id_of(ms: int, random_bits: int) -> str:
    """The id of Unix millisecond `ms` with the low 80 bits `random_bits`, 6 of which the
    version and variant take."""
    value = (ms & ((1 << _MS_BITS) - 1)) << 80 | (random_bits & ((1 << 80) - 1))
    value = (value & ~(0xF << 76)) | (_VERSION << 76)
    value = (value & ~(0x3 << 62)) | (_VARIANT << 62)
    return f"{value:032x}"


def issued_ms(event_id: str) -> int | None:
    """When a decision with this id was made (Unix ms); None for an id not made here."""
    if len(event_id) != 32 or event_id[12] != "7":
        return None
    try:
        return int(event_id[:12], 16)
    except ValueError:
        return None


def age_s(event_id: str) -> float | None:
    """How long ago (by this machine's clock) the decision with this id was made; negative
    when another machine's clock runs ahead; None for an id not made here."""
    made = issued_ms(event_id)
    return None if made is None else (_now_ms() - made) / 1000
