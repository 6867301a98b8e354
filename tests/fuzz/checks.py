"""What every answer to a generated request must be, and Redis snapshots for partial writes."""

from __future__ import annotations

import collections
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc
import redis
from google.protobuf import descriptor
from google.protobuf.message import Message

from emma.runtime.limits import DEFAULT_MESSAGE_BYTES

# Requests (and outcomes) per RPC in this run, for the summary at the end.
COUNTS: collections.Counter[str] = collections.Counter()
OUTCOMES: collections.Counter[tuple[str, str]] = collections.Counter()

_BEGAN = time.monotonic()


def write_report() -> None:
    """The counts so far, as JSON, to EMMA_FUZZ_REPORT when set (also during long runs)."""
    path = os.environ.get("EMMA_FUZZ_REPORT")
    if not path or not COUNTS:
        return
    summary = {
        "seconds": round(time.monotonic() - _BEGAN, 1),
        "requests": dict(sorted(COUNTS.items())),
        "outcomes": {f"{rpc} {code}": n for (rpc, code), n in sorted(OUTCOMES.items())},
    }
    with open(path, "w") as out:
        json.dump(summary, out, indent=2)


_SEGMENT = re.compile(r"([a-z_][a-z0-9_]*)(?:\[(\d+)\])?")
_BATCH = re.compile(r"batches\[\d+\]\.")
# A rejected message's size beyond which RESOURCE_EXHAUSTED is the right answer.
LIMIT_BYTES = DEFAULT_MESSAGE_BYTES


def field_path(desc: descriptor.Descriptor, details: str) -> str | None:
    """The field path a status message starts with, when it names a field of `desc` (through
    nested messages, with [i] on repeated fields); None otherwise."""
    path, sep, problem = details.partition(": ")
    if not sep or not problem:
        return None
    current: descriptor.Descriptor | None = desc
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None or current is None:
            return None
        name, index = match.group(1), match.group(2)
        field = current.fields_by_name.get(name)
        if field is None:
            if name in current.oneofs_by_name and index is None:
                current = None  # a oneof is named as a whole: nothing below it
                continue
            return None
        if index is not None and not field.is_repeated:
            return None
        current = field.message_type if field.type == field.TYPE_MESSAGE else None
    return path


def stream_field_path(desc: descriptor.Descriptor, details: str) -> str | None:
    """field_path for a client-streaming RPC: `batches[i].` and then a field of one message."""
    match = _BATCH.match(details)
    if match is None:
        return None
    return field_path(desc, details[match.end() :])


def check_status(
    rpc: str,
    request_desc: descriptor.Descriptor,
    code: grpc.StatusCode,
    details: str,
    size: int,
    *,
    also: Iterable[grpc.StatusCode] = (),
    path_of: Callable[[descriptor.Descriptor, str], str | None] = field_path,
) -> None:
    """OK; INVALID_ARGUMENT (or a code in `also`) naming a field; RESOURCE_EXHAUSTED for an
    oversize request. Anything else fails the test."""
    COUNTS[rpc] += 1
    OUTCOMES[(rpc, code.name)] += 1
    if sum(COUNTS.values()) % 500 == 0:
        write_report()
    if code == grpc.StatusCode.OK:
        return
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert size > LIMIT_BYTES - 64, f"{rpc}: RESOURCE_EXHAUSTED for {size} bytes: {details}"
        return
    assert code == grpc.StatusCode.INVALID_ARGUMENT or code in also, (
        f"{rpc}: {code.name}: {details}"
    )
    assert path_of(request_desc, details) is not None, (
        f"{rpc}: {code.name} names no field of {request_desc.name}: {details!r}"
    )


def call(method: Any, request: Message) -> tuple[grpc.StatusCode, str, Any]:
    """Calls a blocking unary stub method; (code, details, response or None)."""
    try:
        response, _ = method.with_call(request, timeout=60)
    except grpc.RpcError as error:
        return error.code(), error.details() or "", None
    return grpc.StatusCode.OK, "", response


# --- Redis state ------------------------------------------------------------------------------

Snapshot = dict[bytes, Any]
# Fields of an outbox entry that differ between two appends of the same batch.
_VOLATILE_FIELDS = {b"recorded_ms"}


def snapshot(client: redis.Redis) -> Snapshot:
    """Every key's DUMP: equal snapshots mean nothing was written (TTLs aside)."""
    keys = sorted(client.scan_iter(count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
    return dict(zip(keys, pipe.execute(), strict=True))


def contents(client: redis.Redis) -> Snapshot:
    """Every key's value (not its encoding, which depends on the order of writes), with
    streams as their entries without ids and recording times: equal for the same writes
    made at different times."""
    result: Snapshot = {}
    for key in sorted(client.scan_iter(count=1000)):
        kind = client.type(key)
        if kind == b"stream":
            result[key] = [
                sorted((k, v) for k, v in fields.items() if k not in _VOLATILE_FIELDS)
                for _, fields in client.xrange(key)
            ]
        elif kind == b"hash":
            result[key] = sorted(client.hgetall(key).items())
        elif kind == b"set":
            result[key] = sorted(client.smembers(key))
        elif kind == b"zset":
            result[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"list":
            result[key] = client.lrange(key, 0, -1)
        else:
            result[key] = client.get(key)
    return result


def restore(client: redis.Redis, saved: Snapshot) -> None:
    """Replaces the database with a snapshot (without TTLs)."""
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for key, value in saved.items():
        if value is not None:
            pipe.restore(key, 0, value, replace=True)
    pipe.execute()


def changed_keys(before: Snapshot, after: Snapshot) -> list[bytes]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
