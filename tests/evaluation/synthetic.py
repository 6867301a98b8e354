"""Synthetic logged data whose policies' true values are known in closed form."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from emma.decision.decision_log import LoggedDecision
from emma.decision.features import dsjson_context
from emma.evaluation.join import JoinedEvent
from emma.evaluation.policies import Example
from emma.evaluation.records import parse_decision

# Click probability of offer k for customer type x: the best offer depends on the type.
# Near 0 or 1, so most of IPS's variance comes from the weights, which DR removes.
MU = np.array(
    [
        [0.05, 0.90, 0.20, 0.30],
        [0.85, 0.05, 0.20, 0.10],
        [0.10, 0.20, 0.90, 0.05],
    ]
)
# The logging policy: skewed, different per type, never zero.
LOGGING = np.array(
    [
        [0.40, 0.30, 0.20, 0.10],
        [0.10, 0.40, 0.30, 0.20],
        [0.25, 0.25, 0.10, 0.40],
    ]
)
OFFERS = ("o0", "o1", "o2", "o3")
# The baseline takes o3 (highest priority) whenever it is logged, i.e. always.
PRIORITIES = {"o0": 2, "o1": 3, "o2": 1, "o3": 4}
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def shared_of(kind: int) -> dict[str, dict[str, float]]:
    return {"U": {f"type=u{kind}": 1.0}, "C": {"daypart=morning": 1.0}}


def actions() -> list[dict[str, dict[str, float]]]:
    return [
        {"A": {f"offer={o}": 1.0, f"cat=c{i}": 1.0}, "H": {"ch=in_app": 1.0}}
        for i, o in enumerate(OFFERS)
    ]


def true_value(policy: np.ndarray) -> float:
    """The value of a policy given as a (type x offer) probability table; types are uniform."""
    return float(np.mean(np.sum(policy * MU, axis=1)))


def uniform_value() -> float:
    return true_value(np.full(MU.shape, 0.25))


def baseline_value() -> float:
    table = np.zeros(MU.shape)
    table[:, OFFERS.index(max(PRIORITIES, key=PRIORITIES.__getitem__))] = 1.0
    return true_value(table)


def logging_value() -> float:
    return true_value(LOGGING)


def best_value() -> float:
    return float(np.mean(MU.max(axis=1)))


@dataclasses.dataclass(frozen=True)
class Logged:
    line: dict[str, object]
    kind: int
    reward: float


def decision_line(
    event_id: str,
    kind: int,
    index: int,
    *,
    at: datetime = START,
    deferred: bool = False,
    pmf: Sequence[float] | None = None,
) -> dict[str, object]:
    """A DSJSON line exactly as the decision service logs it."""
    logged = LoggedDecision(
        event_id=event_id,
        timestamp=at,
        context=dsjson_context(shared_of(kind), actions()),
        pmf=list(pmf if pmf is not None else LOGGING[kind]),
        index=index,
        model_version="online-1",
        deferred=deferred,
        offer_id=OFFERS[index],
        channel="in_app",
        customer="p-test",
        fallback=False,
    )
    return logged.dsjson()


def generate(n: int, seed: int) -> list[Logged]:
    rng = np.random.default_rng(seed)
    logged = []
    for i in range(n):
        kind = int(rng.integers(0, 3))
        index = int(rng.choice(4, p=LOGGING[kind]))
        reward = float(rng.random() < MU[kind, index])
        line = decision_line(f"e{seed}-{i}", kind, index, at=START + timedelta(seconds=i))
        logged.append(Logged(line, kind, reward))
    return logged


def joined(n: int, seed: int) -> list[JoinedEvent]:
    return [
        JoinedEvent(parse_decision(item.line), item.reward, item.reward != 0.0)
        for item in generate(n, seed)
    ]


class TrueRewards:
    """A perfect reward model (the hidden MU), for the DR-variance comparison."""

    name = "truth"

    def predict(self, example: Example) -> list[float]:
        kind = int(next(iter(example.joined.event.shared["U"]))[len("type=u") :])
        return [float(m) for m in MU[kind]]

    def learn(self, example: Example) -> None:
        pass

    def close(self) -> None:
        pass


class NoRewards:
    """r_hat = 0 everywhere: DR reduces to IPS."""

    name = "zero"

    def predict(self, example: Example) -> list[float]:
        return [0.0] * len(example.joined.event.actions)

    def learn(self, example: Example) -> None:
        pass

    def close(self) -> None:
        pass
