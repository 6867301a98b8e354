"""Reward models for the doubly-robust estimator, trained progressively on the log."""

from __future__ import annotations

import collections
import shlex
from collections.abc import Sequence
from typing import Protocol

import vowpalwabbit

from emma.evaluation.policies import Example

# The service's default interactions: user and context crossed with offer and channel, and
# context with the customer-action match (M).
DEFAULT_REGRESSION_ARGS = "--cb_adf --cb_type mtr -q UA -q UH -q CA -q CH -q CM"


class RewardModel(Protocol):
    """Predicts the reward of each of an event's actions; learns after predicting."""

    name: str

    def predict(self, example: Example) -> Sequence[float]: ...

    def learn(self, example: Example) -> None: ...

    def close(self) -> None: ...


class VWRegression:
    """A VW direct-method regression of the reward on (shared x action) features.

    `--cb_adf --cb_type mtr` fits the logged action's cost by squared loss, online; its
    per-action scores are cost estimates, so the reward estimate is minus the score.
    Used progressively (predict, then learn), each event's estimate comes from a model
    that has not seen that event, which keeps the DR correction term honest.
    """

    name = "vw"

    def __init__(self, args: str = DEFAULT_REGRESSION_ARGS) -> None:
        words = shlex.split(args)
        if "--quiet" not in words:
            words.append("--quiet")
        self.args = shlex.join(words)
        self._workspace = vowpalwabbit.Workspace(self.args)

    def predict(self, example: Example) -> Sequence[float]:
        return [-float(score) for score in self._workspace.predict(example.lines)]

    def learn(self, example: Example) -> None:
        self._workspace.learn(example.labelled())

    def close(self) -> None:
        self._workspace.finish()


class RunningMeans:
    """The mean reward of each (offer, channel) so far, shrunk towards the overall mean.

    Ignores the customer and the context: a weak but transparent model, useful to see
    how much of DR's gain over IPS comes from the regression.
    """

    name = "means"

    def __init__(self, prior_weight: float = 5.0) -> None:
        self.prior_weight = prior_weight
        self._sums: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._total = 0.0
        self._n = 0

    def _key(self, example: Example, index: int) -> tuple[str, str]:
        event = example.joined.event
        return event.offer_id(index), event.channel(index)

    def predict(self, example: Example) -> Sequence[float]:
        overall = self._total / self._n if self._n else 0.0
        estimates = []
        for index in range(len(example.joined.event.actions)):
            key = self._key(example, index)
            weight = self._counts[key] + self.prior_weight
            estimates.append((self._sums[key] + self.prior_weight * overall) / weight)
        return estimates

    def learn(self, example: Example) -> None:
        key = self._key(example, example.joined.event.chosen)
        reward = example.joined.reward
        self._sums[key] += reward
        self._counts[key] += 1
        self._total += reward
        self._n += 1

    def close(self) -> None:
        pass
