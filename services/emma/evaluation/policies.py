"""Policies to evaluate on the log: the logging policy, baseline, uniform and VW candidates."""

from __future__ import annotations

import dataclasses
import functools
import math
import shlex
from collections.abc import Mapping, Sequence
from typing import Protocol

import vowpalwabbit

from emma.decision.features import vw_lines, with_label
from emma.evaluation.join import JoinedEvent


@dataclasses.dataclass(frozen=True)
class Example:
    """A joined decision and its VW text lines (built once, shared by every VW workspace)."""

    joined: JoinedEvent

    @functools.cached_property
    def lines(self) -> list[str]:
        event = self.joined.event
        return vw_lines(event.shared, event.actions)

    def labelled(self) -> list[str]:
        """The lines with the CB label on the logged action; VW minimises cost = -reward."""
        event = self.joined.event
        return with_label(self.lines, event.chosen, -self.joined.reward, event.propensity)


class Policy(Protocol):
    """A target policy: its distribution over an event's logged actions, before learning."""

    name: str

    def distribution(self, example: Example) -> Sequence[float]: ...

    def learn(self, example: Example) -> None: ...

    def close(self) -> None: ...


class LoggingPolicy:
    """The live policy as it acted: the logged probabilities themselves."""

    name = "live"

    def distribution(self, example: Example) -> Sequence[float]:
        return example.joined.event.pmf

    def learn(self, example: Example) -> None:
        pass

    def close(self) -> None:
        pass


class UniformPolicy:
    """Uniform random over the actions that were eligible for the decision."""

    name = "uniform"

    def distribution(self, example: Example) -> Sequence[float]:
        count = len(example.joined.event.actions)
        return [1.0 / count] * count

    def learn(self, example: Example) -> None:
        pass

    def close(self) -> None:
        pass


def one_hot(count: int, index: int) -> list[float]:
    pmf = [0.0] * count
    pmf[index] = 1.0
    return pmf


class BaselinePolicy:
    """The catalog's priority order: the logged action whose offer has the highest priority.

    Ties (one offer on several channels, or equal priorities) go to the first action in
    logged order, which is the catalog's order of offers and of each offer's channels.
    Offers the catalog does not know rank last.
    """

    name = "baseline"

    def __init__(self, priorities: Mapping[str, int]) -> None:
        self.priorities = dict(priorities)

    def choose(self, example: Example) -> int:
        event = example.joined.event
        ranks = [
            self.priorities.get(event.offer_id(i), -math.inf) for i in range(len(event.actions))
        ]
        best = max(ranks)
        return ranks.index(best)

    def distribution(self, example: Example) -> Sequence[float]:
        return one_hot(len(example.joined.event.actions), self.choose(example))

    def learn(self, example: Example) -> None:
        pass

    def close(self) -> None:
        pass


class CandidateError(ValueError):
    """Candidate VW arguments that cannot be evaluated."""


def candidate_args(args: str) -> str:
    """Checks a candidate's VW arguments and makes VW quiet."""
    words = shlex.split(args)
    if "--cb_explore_adf" not in words and "--cb_adf" not in words:
        raise CandidateError(f"{args!r}: a candidate needs --cb_explore_adf (or --cb_adf)")
    if "--dsjson" in words or "--json" in words:
        raise CandidateError(f"{args!r}: leave out --dsjson; the evaluator feeds examples itself")
    if "--quiet" not in words:
        words.append("--quiet")
    return shlex.join(words)


class VWCandidate:
    """A VW learner evaluated by progressive validation.

    For each event in log order the candidate's distribution is taken before it learns
    from that event, so every estimate term comes from a model that had not seen it: the
    estimate is what the learner would have earned online on this traffic (the usual
    caveat: it learns from the logging policy's choices, not from its own).
    A `--cb_adf` (no exploration) candidate is greedy on its cost estimates.
    """

    def __init__(self, args: str, name: str | None = None) -> None:
        self.args = candidate_args(args)
        self.name = name or args.strip()
        self.explores = "--cb_explore_adf" in shlex.split(self.args)
        try:
            self._workspace = vowpalwabbit.Workspace(self.args)
        except Exception as error:  # VW raises bare exceptions for bad arguments
            raise CandidateError(f"{args!r}: VW rejected the arguments: {error}") from None

    def distribution(self, example: Example) -> Sequence[float]:
        count = len(example.joined.event.actions)
        raw = self._workspace.predict(example.lines)
        if not self.explores:
            scores = [float(s) for s in raw]
            return one_hot(count, scores.index(min(scores)))
        pmf = [max(0.0, float(p)) for p in raw]
        total = sum(pmf)
        if len(pmf) != count or not total > 0:
            return [1.0 / count] * count
        return [p / total for p in pmf]

    def learn(self, example: Example) -> None:
        self._workspace.learn(example.labelled())

    def close(self) -> None:
        self._workspace.finish()
