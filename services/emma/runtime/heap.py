"""Freezing a built service's heap, so full garbage collections stop pausing every request."""

from __future__ import annotations

import gc


def freeze_heap() -> None:
    """Moves every object alive now out of the garbage collector's sight.

    What a service builds before it serves (modules, catalog, model, store registry, zone
    polygons) lives as long as the process; a full collection would traverse all of it
    on every run, a pause of 30-55 ms that every request in flight waits out. Frozen,
    those objects are never scanned again, and full collections look at new objects only.
    """
    gc.collect()
    gc.freeze()
