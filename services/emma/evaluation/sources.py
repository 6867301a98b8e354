"""Where logged decisions come from: the Redis streams, or a joined DSJSON file, and back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import redis

from emma.decision.log_line import line_of
from emma.evaluation.join import JoinedEvent
from emma.evaluation.records import (
    LogFormatError,
    LoggedEvent,
    Outcome,
    entry_time,
    parse_decision,
    parse_outcome,
)

# Entries fetched per XRANGE round trip: large enough to be quick, small enough for memory.
PAGE = 5_000

# XRANGE's answer with decode_responses=True.
Entries = list[tuple[str, dict[str, Any]]]


def _stream(
    client: redis.Redis, stream: str, limit: int | None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The stream's entries oldest first; with `limit`, only the newest `limit` of them."""
    if limit is not None:
        newest = cast(Entries, client.xrevrange(stream, count=limit))
        yield from reversed(newest)
        return
    start = "-"
    while True:
        page = cast(Entries, client.xrange(stream, min=start, count=PAGE))
        yield from page
        if len(page) < PAGE:
            return
        # Exclusive start after the last id seen (Redis >= 6.2).
        start = "(" + str(page[-1][0])


def _decision_line(fields: dict[str, Any], stream: str) -> dict[str, Any]:
    try:
        return line_of(fields)
    except ValueError as error:
        raise LogFormatError(f"{stream}: an entry has no readable line: {error}") from None


def _json_field(fields: dict[str, Any], stream: str) -> dict[str, Any]:
    text = fields.get("json")
    if not isinstance(text, str):
        raise LogFormatError(f"{stream}: an entry has no json field")
    try:
        line = json.loads(text)
    except json.JSONDecodeError as error:
        raise LogFormatError(f"{stream}: an entry is not JSON: {error}") from None
    if not isinstance(line, dict):
        raise LogFormatError(f"{stream}: an entry is not a JSON object")
    return line


def read_redis(
    url: str, decision_stream: str, reward_stream: str, *, limit: int | None = None
) -> tuple[list[LoggedEvent], list[Outcome]]:
    """Every logged decision (or the newest `limit`) and every reward and activation."""
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5.0)
    try:
        decisions = [
            dataclasses.replace(
                parse_decision(_decision_line(fields, decision_stream)),
                logged_at=entry_time(entry),
            )
            for entry, fields in _stream(client, decision_stream, limit)
        ]
        outcomes = [
            dataclasses.replace(
                parse_outcome(_json_field(fields, reward_stream), str(fields.get("type", ""))),
                logged_at=entry_time(entry),
            )
            for entry, fields in _stream(client, reward_stream, None)
        ]
    finally:
        client.close()
    return decisions, outcomes


def export_line(joined: JoinedEvent) -> dict[str, Any]:
    """The logged DSJSON line with the joined reward as VW's cost (`vw --dsjson` reads it)."""
    line = dict(joined.event.raw)
    line["_label_cost"] = -joined.reward
    # The line is evaluated, so a deferred decision was activated: VW may learn from it.
    line.pop("_skipLearn", None)
    return line


def write_joined(path: Path, events: Iterable[JoinedEvent]) -> int:
    """Writes one DSJSON line per joined decision; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for joined in events:
            out.write(json.dumps(export_line(joined), separators=(",", ":")) + "\n")
            count += 1
    return count


def read_joined(path: Path) -> list[JoinedEvent]:
    """Joined DSJSON lines (an export): the reward is minus `_label_cost`.

    Lines still marked `_skipLearn` (deferred, never activated) and single-action lines
    are skipped, as the join would have skipped them.
    """
    events = []
    with path.open(encoding="utf-8") as source:
        for number, text in enumerate(source, start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as error:
                raise LogFormatError(f"{path}:{number}: not JSON: {error}") from None
            if not isinstance(line, dict):
                raise LogFormatError(f"{path}:{number}: not a JSON object")
            if line.get("_skipLearn"):
                continue
            try:
                event = parse_decision(line)
                cost = float(line.get("_label_cost", 0.0))
            except (LogFormatError, TypeError, ValueError) as error:
                raise LogFormatError(f"{path}:{number}: {error}") from None
            if len(event.actions) < 2:
                continue  # the fallback: every policy chooses it (see join)
            events.append(JoinedEvent(event=event, reward=-cost, rewarded=cost != 0.0))
    return events
