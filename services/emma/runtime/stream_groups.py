"""How far a consumer group is behind its stream, without trusting Redis's lag alone.

`XINFO GROUPS` reports a group's `lag`, an estimate that Redis up to 7.x gets wrong
once the stream was trimmed past the group's last read (redis/redis#13957: thousands
of entries "behind" a group that had read everything). A group that was given the
stream's last entry has nothing left to read, whatever the estimate says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def stream_id(text: str | bytes) -> tuple[int, int]:
    """A stream entry id (`<ms>-<seq>`) as a pair that orders as the ids do."""
    millis, _, sequence = (text.decode() if isinstance(text, bytes) else text).partition("-")
    return int(millis), int(sequence or 0)


def unread(group: Mapping[str, Any], last_generated_id: str | bytes) -> int:
    """Entries of the stream not yet given to the group (an `XINFO GROUPS` item): none
    once it was given the last one; else Redis's estimate, and at least one."""
    if stream_id(group["last-delivered-id"]) >= stream_id(last_generated_id):
        return 0
    lag = group.get("lag")
    return max(1, int(lag)) if lag is not None else 1
