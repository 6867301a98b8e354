"""Training: the logged DSJSON lines, labelled with their joined reward, fed to VW's own reader."""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from emma.decision.bandit import greedy_index, load_workspace, save_workspace
from emma.decision.decision_log import EMMA_FIELD

log = logging.getLogger(__name__)


class BadLine(ValueError):
    """A logged line VW cannot learn from; it is skipped and counted."""


def labelled(line: Mapping[str, Any], reward: float) -> dict[str, Any]:
    """The logged line as VW learns it: cost is minus the reward (VW minimises cost), and a
    deferred decision that reaches the learner was activated, so it is no longer skipped."""
    learnable = dict(line)
    learnable["_label_cost"] = -reward
    learnable.pop("_skipLearn", None)
    return learnable


@dataclasses.dataclass
class Agreement:
    """Whether the learner's top choice matched the baseline's, over the latest decisions."""

    window: int
    threshold: float
    recent: collections.deque[bool] = dataclasses.field(default_factory=collections.deque)
    graduated: bool = False

    def add(self, agreed: bool) -> None:
        self.recent.append(agreed)
        while len(self.recent) > self.window:
            self.recent.popleft()
        # Once the learner matched the baseline it keeps serving while it learns to beat it:
        # agreement is expected to fall as it finds better choices than the baseline's.
        if len(self.recent) >= self.window and self.rate >= self.threshold:
            self.graduated = True

    @property
    def rate(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def state(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "measured": len(self.recent),
            "threshold": self.threshold,
            "graduated": self.graduated,
            "recent": "".join("1" if a else "0" for a in self.recent),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.recent = collections.deque(c == "1" for c in str(state.get("recent", "")))
        while len(self.recent) > self.window:
            self.recent.popleft()
        self.graduated = bool(state.get("graduated", False))


class Trainer:
    """A VW workspace reading DSJSON: it learns exactly what `vw --dsjson` would."""

    def __init__(self, vw_args: str, agreement: Agreement, data: bytes | None = None) -> None:
        self.vw_args = vw_args
        self.workspace = load_workspace(f"{vw_args} --dsjson", data)
        self.agreement = agreement
        self.updates = 0

    def learn(self, line: Mapping[str, Any], reward: float) -> None:
        """One update; measures first whether the model already agreed with the baseline."""
        text = json.dumps(labelled(line, reward), separators=(",", ":"))
        try:
            examples = self.workspace.parse(text)
        except Exception as error:  # VW raises bare RuntimeErrors on malformed input.
            raise BadLine(f"VW cannot read the line: {error}") from error
        if not examples:
            raise BadLine("VW read no example from the line")
        try:
            if len(examples) < 3:
                # VW skips lines it will not learn from (e.g. still marked `_skipLearn`).
                raise BadLine("no shared example and at least two actions")
            baseline = _baseline(line)
            if baseline is not None:
                pmf = self.workspace.predict(examples)
                self.agreement.add(greedy_index(pmf) == baseline)
            self.workspace.learn(examples)
            self.updates += 1
        finally:
            self.workspace.finish_example(examples)

    def learn_all(self, batch: Iterable[tuple[Mapping[str, Any], float]]) -> int:
        """Learns every (line, reward); returns how many lines were skipped as unreadable."""
        skipped = 0
        for line, reward in batch:
            try:
                self.learn(line, reward)
            except BadLine as error:
                skipped += 1
                log.warning(
                    "decision not learnable",
                    extra={"event_id": line.get("EventId"), "error": str(error)},
                )
        return skipped

    def snapshot(self) -> bytes:
        return save_workspace(self.workspace)

    def close(self) -> None:
        self.workspace.finish()


def _baseline(line: Mapping[str, Any]) -> int | None:
    emma = line.get(EMMA_FIELD)
    if not isinstance(emma, Mapping):
        return None
    index = emma.get("baselineIndex")
    return index if isinstance(index, int) and not isinstance(index, bool) else None
