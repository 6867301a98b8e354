"""Context by store and minute: one Resolve per store, touchpoint and device each minute.

Everything the context service answers for a till request follows from the store, the
touchpoint, the device and the local time, except the basket features; within one minute
of request time the answer repeats. The cache keeps the answer without its basket
features and adds the request's own basket (as the context service computes it:
docs/context.md) and local time on every hit. Requests with a location (distance,
nearest store) or without a store always go to the context service.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable
from datetime import UTC

from emma.decision.domain import DecideInput, Situation

Resolve = Callable[[DecideInput, float], Awaitable[Situation]]
Key = tuple[str, str, str, int]
BASKET_FEATURES = frozenset({"basket_category", "basket_items", "basket_value"})


def basket_features(request: DecideInput) -> tuple[tuple[str, float | str], ...]:
    """The context service's basket features of `request` (emma.context.features)."""
    if not request.basket:
        return (("basket_items", 0.0), ("basket_value", 0.0))
    categories = sorted({line.category.strip() for line in request.basket} - {""})
    return (
        *(("basket_category", name) for name in categories),
        ("basket_items", float(len(request.basket))),
        ("basket_value", math.fsum(line.amount for line in request.basket)),
    )


@dataclasses.dataclass(frozen=True)
class _Entry:
    situation: Situation  # without basket features
    basket_at: int  # where the basket features go among the others


class ContextCache:
    """Situations by (store, touchpoint, device, minute of request time), at most `entries`."""

    def __init__(self, resolve: Resolve, entries: int = 4096) -> None:
        if entries < 1:
            raise ValueError("a context cache holds at least one entry")
        self._resolve = resolve
        self._limit = entries
        self._entries: dict[Key, _Entry] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(request: DecideInput) -> Key | None:
        if not request.store_id or request.location is not None:
            return None
        minute = math.floor(request.request_time.timestamp() / 60)
        return (request.store_id, request.touchpoint.value, request.device, minute)

    def cached(self, request: DecideInput) -> Situation | None:
        """The request's situation if its store and minute are kept; None otherwise (then
        `situation` resolves it). No await: a hit needs no task of its own."""
        key = self.key(request)
        entry = None if key is None else self._entries.get(key)
        if entry is None:
            return None
        self.hits += 1
        return self._for(entry, request)

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        kept = self.cached(request)
        if kept is not None:
            return kept
        key = self.key(request)
        if key is None:
            return await self._resolve(request, timeout_s)
        self.misses += 1
        situation = await self._resolve(request, timeout_s)
        if situation.resolved:
            self._store(key, situation)
        return situation

    def _store(self, key: Key, situation: Situation) -> None:
        features = situation.features
        basket_at = next(
            (i for i, (name, _) in enumerate(features) if name in BASKET_FEATURES), len(features)
        )
        kept = tuple(f for f in features if f[0] not in BASKET_FEATURES)
        while len(self._entries) >= self._limit:
            # Oldest first: dicts keep insertion order, and old minutes are never asked again.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(dataclasses.replace(situation, features=kept), basket_at)

    @staticmethod
    def _for(entry: _Entry, request: DecideInput) -> Situation:
        cached = entry.situation
        features = cached.features
        at = entry.basket_at
        return dataclasses.replace(
            cached,
            # Same minute, same offset: the request's own instant in the store's local time.
            local_time=request.request_time.astimezone(cached.local_time.tzinfo or UTC),
            features=(*features[:at], *basket_features(request), *features[at:]),
        )
