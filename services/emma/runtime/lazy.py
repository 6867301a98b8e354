"""Lazy package exports, so importing a generated API module does not load its whole server."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `name` from the module `exports[name]` on first use.

    `from emma.decision.v1 import decision_pb2` (what the client SDK does) then no longer
    pulls in Vowpal Wabbit, Redis and the server stack through `emma/decision/__init__.py`.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
