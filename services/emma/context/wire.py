"""Features in the wire format of the Context message, for answers assembled from bytes."""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable

from emma.context.v1 import context_pb2

_DOUBLE = struct.Struct("<d")


def feature_message(name: str, value: float | str) -> context_pb2.Feature:
    if isinstance(value, str):
        return context_pb2.Feature(name=name, text=value)
    return context_pb2.Feature(name=name, number=value)


def features_fragment(features: Iterable[tuple[str, float | str]], signals: bool = False) -> bytes:
    """A serialised Context holding only these features (or signals): parsing fragments
    one after the other appends their repeated fields in order (protobuf's merge rule)."""
    messages = [feature_message(name, value) for name, value in features]
    if signals:
        return context_pb2.Context(signals=messages).SerializeToString()
    return context_pb2.Context(features=messages).SerializeToString()


@functools.cache
def _number_prefix(name: str) -> bytes:
    """The bytes of a Context fragment with one number feature `name` before its value."""
    encoded = features_fragment([(name, 0.0)])
    return encoded[: -_DOUBLE.size]  # a double is the last field, 8 little-endian bytes


def number_fragment(name: str, value: float) -> bytes:
    """features_fragment of a single number feature, for values that rarely recur (a
    basket's value, a distance): the fixed prefix and the eight bytes of the double."""
    return _number_prefix(name) + _DOUBLE.pack(value)
