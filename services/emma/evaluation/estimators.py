"""Off-policy estimators (IPS, SNIPS, doubly robust) with confidence intervals."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


class Interval(enum.StrEnum):
    """How confidence intervals are computed."""

    # Mean +- z * standard error; SNIPS's standard error by the delta method.
    NORMAL = "normal"
    # Percentiles of the estimates on resampled events (with replacement).
    BOOTSTRAP = "bootstrap"


@dataclasses.dataclass(frozen=True)
class Terms:
    """Per-event quantities of one target policy on the log, from which every estimate follows.

    weight:  pi(logged action) / logging probability
    reward:  the joined reward
    direct:  sum over the event's actions of pi(a) * r_hat(a) (the reward model's value of pi)
    fitted:  r_hat(logged action)
    """

    weight: Array
    reward: Array
    direct: Array
    fitted: Array

    @classmethod
    def of(
        cls, weight: list[float], reward: list[float], direct: list[float], fitted: list[float]
    ) -> Terms:
        return cls(
            *(np.asarray(values, dtype=np.float64) for values in (weight, reward, direct, fitted))
        )

    def __len__(self) -> int:
        return int(self.weight.shape[0])

    def take(self, rows: npt.NDArray[np.intp]) -> Terms:
        return Terms(self.weight[rows], self.reward[rows], self.direct[rows], self.fitted[rows])


@dataclasses.dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclasses.dataclass(frozen=True)
class PolicyEstimate:
    """The three estimates of one policy, and how much of the log really informs them."""

    policy: str
    events: int
    ips: Estimate
    snips: Estimate
    dr: Estimate
    # (sum w)^2 / sum w^2: how many logged events the weighted ones are worth.
    effective_events: float
    mean_weight: float


def ips_value(t: Terms) -> float:
    return float(np.mean(t.weight * t.reward))


def snips_value(t: Terms) -> float:
    total = float(np.sum(t.weight))
    return float(np.sum(t.weight * t.reward)) / total if total > 0 else 0.0


def dr_value(t: Terms) -> float:
    return float(np.mean(t.direct + t.weight * (t.reward - t.fitted)))


def _normal(samples: Array, z: float) -> Estimate:
    mean = float(np.mean(samples))
    se = float(np.std(samples, ddof=1)) / math.sqrt(len(samples)) if len(samples) > 1 else 0.0
    return Estimate(mean, mean - z * se, mean + z * se)


def _snips_normal(t: Terms, z: float) -> Estimate:
    value = snips_value(t)
    total = float(np.sum(t.weight))
    if total <= 0:
        return Estimate(value, value, value)
    # Delta method for a ratio of means: Var ~ sum (w_i (r_i - value))^2 / (sum w)^2.
    se = math.sqrt(float(np.sum((t.weight * (t.reward - value)) ** 2))) / total
    return Estimate(value, value - z * se, value + z * se)


def _bootstrap(
    t: Terms, value: Callable[[Terms], float], samples: int, confidence: float, seed: int
) -> Estimate:
    rng = np.random.default_rng(seed)
    n = len(t)
    draws = np.array([value(t.take(rng.integers(0, n, size=n))) for _ in range(samples)])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(value(t), float(low), float(high))


def estimate(
    policy: str,
    terms: Terms,
    *,
    interval: Interval = Interval.NORMAL,
    confidence: float = 0.95,
    bootstrap_samples: int = 500,
    seed: int = 0,
) -> PolicyEstimate:
    """IPS, SNIPS and DR of one policy with `confidence` intervals."""
    if len(terms) == 0:
        raise ValueError("no events to estimate from")
    weight_sum = float(np.sum(terms.weight))
    square_sum = float(np.sum(terms.weight**2))
    effective = weight_sum**2 / square_sum if square_sum > 0 else 0.0
    if interval is Interval.BOOTSTRAP:
        ips, snips, dr = (
            _bootstrap(terms, value, bootstrap_samples, confidence, seed)
            for value in (ips_value, snips_value, dr_value)
        )
    else:
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        ips = _normal(terms.weight * terms.reward, z)
        snips = _snips_normal(terms, z)
        dr = _normal(terms.direct + terms.weight * (terms.reward - terms.fitted), z)
    return PolicyEstimate(
        policy=policy,
        events=len(terms),
        ips=ips,
        snips=snips,
        dr=dr,
        effective_events=effective,
        mean_weight=weight_sum / len(terms),
    )
