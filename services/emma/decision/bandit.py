"""The contextual bandit: a Vowpal Wabbit --cb_explore_adf workspace, sampled deterministically."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Sequence

import vowpalwabbit

from emma.decision.features import with_label


class ModelError(RuntimeError):
    """The model could not score; the caller falls back to a baseline choice."""


def sample_index(pmf: Sequence[float], event_id: str) -> int:
    """Draws an index from `pmf` with a uniform derived from the event id.

    The same event id and the same pmf always give the same index, so any decision
    can be replayed from the log; different event ids explore independently.
    """
    digest = hashlib.sha256(event_id.encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    total = 0.0
    for index, probability in enumerate(pmf):
        total += probability
        if draw < total:
            return index
    # Rounding can leave the sum a hair below 1: the last action with mass takes the rest.
    return max(i for i, p in enumerate(pmf) if p > 0)


def uniform(count: int) -> list[float]:
    return [1.0 / count] * count


class Bandit:
    """One VW workspace behind a lock: VW is not thread safe and predict/learn must not interleave.

    Calls are synchronous and short (microseconds to a millisecond for tens of actions), so
    the asyncio servicer calls them inline rather than paying for a thread hop.
    """

    def __init__(self, vw_args: str, *, version_prefix: str = "online") -> None:
        self._workspace = vowpalwabbit.Workspace(vw_args)
        self._lock = threading.Lock()
        self._prefix = version_prefix
        self._updates = 0

    @property
    def model_version(self) -> str:
        """Changes with every update, so a decision names the model that made it."""
        return f"{self._prefix}-{self._updates}"

    @property
    def updates(self) -> int:
        return self._updates

    def predict(self, lines: list[str]) -> list[float]:
        """The probability of each action (in order) for a multi-line example without labels."""
        actions = len(lines) - 1
        try:
            with self._lock:
                raw = self._workspace.predict(lines)
        except Exception as error:  # VW raises bare RuntimeErrors on malformed input.
            raise ModelError(f"predict failed: {error}") from error
        if not isinstance(raw, list) or len(raw) != actions:
            raise ModelError(f"predict returned {raw!r} for {actions} actions")
        pmf = [float(p) for p in raw]
        total = sum(pmf)
        if not all(math.isfinite(p) and p >= 0 for p in pmf) or total <= 0:
            raise ModelError(f"predict returned an invalid pmf {pmf!r}")
        return [p / total for p in pmf]

    def learn(self, lines: list[str], index: int, cost: float, probability: float) -> None:
        """One online update: action `index` was shown with `probability` and cost `cost`."""
        if not 0 <= index < len(lines) - 1:
            raise ValueError(f"action index {index} out of range")
        if not 0 < probability <= 1:
            raise ValueError(f"probability {probability} not in (0, 1]")
        labelled = with_label(lines, index, cost, probability)
        with self._lock:
            self._workspace.learn(labelled)
            self._updates += 1

    def replace(self, workspace: vowpalwabbit.Workspace, version_prefix: str) -> None:
        """Hot-swaps the model (a learner's snapshot); the update count restarts."""
        with self._lock:
            old, self._workspace = self._workspace, workspace
            self._prefix, self._updates = version_prefix, 0
        old.finish()

    def close(self) -> None:
        with self._lock:
            self._workspace.finish()
