"""One pass over the joined log: every policy's per-event terms, then its estimates."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emma.evaluation.estimators import Interval, PolicyEstimate, Terms, estimate
from emma.evaluation.join import JoinedEvent
from emma.evaluation.policies import Example, Policy
from emma.evaluation.reward_model import RewardModel


@dataclasses.dataclass(frozen=True)
class EstimateSettings:
    interval: Interval = Interval.NORMAL
    confidence: float = 0.95
    bootstrap_samples: int = 500
    seed: int = 0


def evaluate(
    events: Sequence[JoinedEvent],
    policies: Sequence[Policy],
    reward_model: RewardModel,
    settings: EstimateSettings = EstimateSettings(),
) -> list[PolicyEstimate]:
    """Estimates each policy's average reward per decision on `events` (in log order).

    Progressive: for each event the reward model and the learning policies are asked
    first and learn from the event afterwards, so no term uses a model fitted to it.
    """
    columns: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {
        policy.name: ([], [], [], []) for policy in policies
    }
    for joined in events:
        example = Example(joined)
        event = joined.event
        fitted = list(reward_model.predict(example))
        for policy in policies:
            pmf = policy.distribution(example)
            weight, reward, direct, chosen_fit = columns[policy.name]
            weight.append(pmf[event.chosen] / event.propensity)
            reward.append(joined.reward)
            direct.append(sum(p * r for p, r in zip(pmf, fitted, strict=True)))
            chosen_fit.append(fitted[event.chosen])
            policy.learn(example)
        reward_model.learn(example)
    return [
        estimate(
            policy.name,
            Terms.of(*columns[policy.name]),
            interval=settings.interval,
            confidence=settings.confidence,
            bootstrap_samples=settings.bootstrap_samples,
            seed=settings.seed,
        )
        for policy in policies
    ]
