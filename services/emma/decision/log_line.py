"""A decision's DSJSON line as its log entry holds it: zlib-compressed, then base64.

Most of a line is the scored actions' features, the same few objects in decision after
decision; zlib takes a line of 9.2 KB (50 actions) to 1.5 KB in about 30 us, and a
whole entry from 12.7 KB of Redis memory to 4.2 KB and from 11.1 KB of append-only file
to 3.5 KB (docs/operations.md). So the log of a reward window, and the file Redis
replays after a restart, shrink about threefold. Base64 keeps the field text, so every
client reads it, decoding responses or not.

Entries written before lines were compressed keep the line as plain JSON in `json`;
readers take either.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from typing import Any

import orjson

# The entry field of the compressed line, and of a plain one (entries written before).
LINE_FIELD = "zjson"
PLAIN_LINE_FIELD = "json"
# zlib's fastest level: within a few percent of its best on these lines, at half the time.
LEVEL = 1
# A 16 KB window, not zlib's 32 KB: a line of fifty actions is about 9 KB, so no match is
# lost, and the compressor's state is half as large. Setting that state up is most of a
# line's compression: where the heap returns memory between lines it cost 20 page faults
# per line, 5 with this window (docs/performance.md). Readers need nothing: the window's
# size is in the stream's header.
WINDOW_BITS = 14


def pack_line(text: str) -> str:
    """The entry field's value for the DSJSON line `text`."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, WINDOW_BITS)
    packed = compressor.compress(text.encode()) + compressor.flush()
    return base64.b64encode(packed).decode("ascii")


def line_text(fields: Mapping[str, Any] | Mapping[bytes, Any]) -> str:
    """The DSJSON text of a decision entry's fields, as any Redis client returns them (str
    or bytes keys and values); ValueError when the entry holds no readable line."""
    packed = _field(fields, LINE_FIELD)
    if packed is not None:
        try:
            return zlib.decompress(base64.b64decode(packed, validate=True)).decode()
        except (binascii.Error, zlib.error, UnicodeDecodeError) as error:
            raise ValueError(f"{LINE_FIELD}: not a compressed line: {error}") from None
    plain = _field(fields, PLAIN_LINE_FIELD)
    if plain is None:
        raise ValueError(f"no {LINE_FIELD} (or {PLAIN_LINE_FIELD}) field")
    return plain.decode() if isinstance(plain, bytes) else plain


def line_of(fields: Mapping[str, Any] | Mapping[bytes, Any]) -> dict[str, Any]:
    """The DSJSON line of a decision entry, parsed; ValueError when there is none."""
    try:
        # orjson: the learner reads every line, about 9 KB of JSON each.
        line = orjson.loads(line_text(fields))
    except orjson.JSONDecodeError as error:
        raise ValueError(f"the line is not JSON: {error}") from None
    if not isinstance(line, dict):
        raise ValueError("the line is not a JSON object")
    return line


def _field(fields: Mapping[str, Any] | Mapping[bytes, Any], name: str) -> str | bytes | None:
    value = fields.get(name)  # type: ignore[call-overload]
    if value is None:
        value = fields.get(name.encode())  # type: ignore[call-overload]
    return value
