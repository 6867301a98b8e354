"""Reads the context service's data files: YAML, or JSON (a subset of YAML) for big ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import yaml

# libyaml when PyYAML was built with it, else the pure-Python parser (some ten times slower).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE = "<<"


class DataFileError(ValueError):
    """The file is not valid YAML (or JSON, for a .json file)."""


class _Unsupported(Exception):
    """A construct the event reader leaves to the full loader (tags, merge keys)."""


def read_data(path: Path) -> Any:
    """The parsed document; raises OSError, or DataFileError saying where it is malformed.

    A .json file is read with the json module: a registry of tens of thousands of stores
    loads in a fraction of the time YAML takes (see docs/context.md).
    """
    with path.open("rb") as stream:
        if path.suffix.lower() == ".json":
            try:
                return json.load(stream)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise DataFileError(str(error)) from None
        try:
            try:
                return _read_events(stream)
            except _Unsupported:
                stream.seek(0)
                return yaml.load(stream, Loader=_Loader)  # noqa: S506 (a safe loader)
        except yaml.YAMLError as error:
            raise DataFileError(str(error)) from None


def _read_events(stream: IO[bytes]) -> Any:
    """What yaml.load with the safe loader returns, built straight from the parser's events.

    The safe loader first composes a tree of nodes, each resolved and carrying its marks,
    then constructs objects from it; for a registry of 10,000 stores that is some 3 s of
    a 4 s load, while libyaml's events alone take 0.5 s. Scalars are resolved by the safe
    loader's own rules (memoised: keys and values repeat) and constructed by its own
    constructors, so the result is the same. Tags and merge keys (`<<`), rare in data
    files, raise _Unsupported for the full loader to handle.
    """
    loader = _Loader(stream)
    try:
        # Containers being filled: [container, pending mapping key or None, key expected].
        stack: list[list[Any]] = []
        anchors: dict[str, Any] = {}
        resolved: dict[tuple[str, bool, bool], Any] = {}
        document: Any = None
        started = False
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                tag = event.tag
                if tag is not None and tag != "!":
                    raise _Unsupported
                implicit = event.implicit
                key = (event.value, implicit[0], implicit[1])
                if key in resolved:
                    value = resolved[key]
                else:
                    value = resolved[key] = _scalar(loader, event.value, implicit)
                if isinstance(value, list | dict | set):  # pragma: no cover - not from scalars
                    raise _Unsupported
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if event.tag is not None and event.tag not in (_MAP_TAG, _SEQ_TAG, "!"):
                    raise _Unsupported
                container: Any = {} if kind is yaml.MappingStartEvent else []
                if event.anchor is not None:
                    anchors[event.anchor] = container
                _add(stack, container, loader, event)
                stack.append([container, None, True])
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                finished = stack.pop()[0]
                if not stack:
                    document = finished
                continue
            elif kind is yaml.AliasEvent:
                if event.anchor not in anchors:
                    # The full loader reports the undefined alias with its place.
                    raise _Unsupported
                value = anchors[event.anchor]
            elif kind is yaml.DocumentStartEvent:
                if started:
                    raise _Unsupported  # the full loader says: expected a single document
                started = True
                continue
            elif kind is yaml.StreamEndEvent:
                return document
            else:  # stream start, document end
                continue
            if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
                anchors[event.anchor] = value
            if not stack:
                document = value
            else:
                _add(stack, value, loader, event)
    finally:
        loader.dispose()


def _scalar(loader: Any, value: str, implicit: tuple[bool, bool]) -> Any:
    tag = loader.resolve(yaml.ScalarNode, value, implicit)
    if tag == _STR_TAG:
        return value
    constructor = loader.yaml_constructors.get(tag)
    if constructor is None:  # pragma: no cover - the safe loader constructs every tag it resolves
        raise _Unsupported
    return constructor(loader, yaml.ScalarNode(tag, value))


def _add(stack: list[list[Any]], value: Any, loader: Any, event: Any) -> None:
    """Puts a value into the innermost open container: an item, a mapping key or its value."""
    if not stack:
        return
    top = stack[-1]
    container = top[0]
    if isinstance(container, list):
        container.append(value)
    elif top[2]:
        if value == _MERGE and isinstance(event, yaml.ScalarEvent) and event.implicit[0]:
            raise _Unsupported
        try:
            hash(value)
        except TypeError:
            # The full loader's error: found unhashable key, with its place.
            raise _Unsupported from None
        top[1], top[2] = value, False
    else:
        container[top[1]] = value
        top[1], top[2] = None, True
