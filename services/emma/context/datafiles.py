"""Reads the context service's data files: YAML, or JSON (a subset of YAML) for big ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# libyaml scans some ten times faster than pure Python; building the objects stays Python.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DataFileError(ValueError):
    """The file is not valid YAML (or JSON, for a .json file)."""


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
            return yaml.load(stream, Loader=_Loader)  # noqa: S506 (a safe loader)
        except yaml.YAMLError as error:
            raise DataFileError(str(error)) from None
