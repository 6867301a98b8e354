"""IPS, SNIPS and DR on synthetic logs whose target policies have known true values."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from emma.evaluation.estimators import Interval, PolicyEstimate, Terms, estimate
from emma.evaluation.offline import EstimateSettings, evaluate
from emma.evaluation.policies import (
    BaselinePolicy,
    CandidateError,
    LoggingPolicy,
    UniformPolicy,
    VWCandidate,
)
from emma.evaluation.reward_model import RunningMeans, VWRegression

from . import synthetic


def by_name(estimates: list[PolicyEstimate]) -> dict[str, PolicyEstimate]:
    return {e.policy: e for e in estimates}


def width(e: PolicyEstimate, estimator: str) -> float:
    interval = getattr(e, estimator)
    return float(interval.high - interval.low)


def test_the_estimators_are_unbiased_and_their_intervals_cover_the_truth() -> None:
    """Over 40 independent logs: 95% intervals hold the true value about 95% of the time."""
    truths = {"baseline": synthetic.baseline_value(), "uniform": synthetic.uniform_value()}
    covered = {(p, e): 0 for p in truths for e in ("ips", "snips", "dr")}
    values: dict[tuple[str, str], list[float]] = {key: [] for key in covered}
    runs = 40
    for seed in range(runs):
        estimates = by_name(
            evaluate(
                synthetic.joined(600, seed),
                [BaselinePolicy(synthetic.PRIORITIES), UniformPolicy()],
                RunningMeans(),
            )
        )
        for policy, truth in truths.items():
            for estimator in ("ips", "snips", "dr"):
                interval = getattr(estimates[policy], estimator)
                covered[(policy, estimator)] += interval.low <= truth <= interval.high
                values[(policy, estimator)].append(interval.value)
    for (policy, estimator), hits in covered.items():
        assert hits >= 0.85 * runs, (policy, estimator, hits)
        mean = statistics.fmean(values[(policy, estimator)])
        spread = statistics.stdev(values[(policy, estimator)]) / np.sqrt(runs)
        assert abs(mean - truths[policy]) < 3.5 * spread + 1e-3, (policy, estimator, mean)


def test_every_policy_is_estimated_within_its_interval_with_the_vw_reward_model() -> None:
    estimates = by_name(
        evaluate(
            synthetic.joined(3000, seed=12),
            [LoggingPolicy(), BaselinePolicy(synthetic.PRIORITIES), UniformPolicy()],
            VWRegression("--cb_adf --cb_type mtr -q UA"),
        )
    )
    truths = {
        "live": synthetic.logging_value(),
        "baseline": synthetic.baseline_value(),
        "uniform": synthetic.uniform_value(),
    }
    for policy, truth in truths.items():
        for estimator in ("ips", "snips", "dr"):
            interval = getattr(estimates[policy], estimator)
            assert interval.low <= truth <= interval.high, (policy, estimator, interval, truth)
    # The policies really differ, so the test could tell them apart.
    assert abs(truths["live"] - truths["baseline"]) > 0.03


def test_the_live_policy_is_the_plain_average_reward() -> None:
    events = synthetic.joined(500, seed=3)
    live = evaluate(events, [LoggingPolicy()], RunningMeans())[0]
    mean = statistics.fmean(e.reward for e in events)
    assert live.ips.value == pytest.approx(mean)
    assert live.snips.value == pytest.approx(mean)
    # DR adds the reward model's on-policy value and removes its fit: nearly the mean.
    assert live.dr.value == pytest.approx(mean, abs=0.01)
    assert live.effective_events == pytest.approx(500)


def test_dr_has_lower_variance_than_ips_with_a_good_reward_model() -> None:
    events = synthetic.joined(3000, seed=5)
    policies = [UniformPolicy()]
    perfect = evaluate(events, policies, synthetic.TrueRewards())[0]
    none = evaluate(events, policies, synthetic.NoRewards())[0]
    means = evaluate(events, policies, RunningMeans())[0]
    learned = evaluate(events, policies, VWRegression("--cb_adf --cb_type mtr -q UA"))[0]
    # Without a model DR is IPS; the better the model, the narrower DR's interval.
    assert none.dr.value == pytest.approx(none.ips.value)
    assert width(perfect, "dr") < 0.7 * width(perfect, "ips")
    assert width(learned, "dr") < 0.75 * width(learned, "ips")
    assert width(learned, "dr") < width(means, "dr")
    truth = synthetic.uniform_value()
    for result in (perfect, means, learned):
        assert result.dr.low <= truth <= result.dr.high


def test_bootstrap_intervals_agree_with_the_normal_approximation() -> None:
    events = synthetic.joined(1500, seed=8)
    policies = [UniformPolicy()]
    normal = evaluate(events, policies, RunningMeans())[0]
    boot = evaluate(
        events,
        policies,
        RunningMeans(),
        EstimateSettings(interval=Interval.BOOTSTRAP, bootstrap_samples=300, seed=1),
    )[0]
    for estimator in ("ips", "snips", "dr"):
        b, n = getattr(boot, estimator), getattr(normal, estimator)
        assert b.value == pytest.approx(n.value)
        assert b.low < b.value < b.high
        assert 0.7 < (b.high - b.low) / (n.high - n.low) < 1.4


def test_snips_interval_uses_the_delta_method() -> None:
    terms = Terms.of([2.0, 0.0, 2.0, 0.0], [1.0, 0.0, 0.0, 1.0], [0.0] * 4, [0.0] * 4)
    result = estimate("p", terms, confidence=0.95)
    assert result.snips.value == pytest.approx(0.5)  # (2*1 + 2*0) / 4
    se = np.sqrt((2 * 0.5) ** 2 + (2 * -0.5) ** 2) / 4
    assert result.snips.high - result.snips.value == pytest.approx(1.959964 * se, rel=1e-4)
    assert result.effective_events == pytest.approx(2.0)


def test_a_learning_candidate_is_valued_by_progressive_validation() -> None:
    events = synthetic.joined(3000, seed=21)
    candidate = VWCandidate("--cb_explore_adf --epsilon 0.05 -q UA")
    try:
        estimates = by_name(
            evaluate(
                events,
                [UniformPolicy(), candidate],
                VWRegression("--cb_adf --cb_type mtr -q UA"),
            )
        )
    finally:
        candidate.close()
    learned = estimates[candidate.name].dr
    # It learns the best offer per customer type: far above random, near the optimum.
    assert learned.low > synthetic.uniform_value() + 0.1
    assert learned.value > 0.85 * synthetic.best_value()
    assert learned.value < synthetic.best_value() + 0.03


@pytest.mark.parametrize(
    "args",
    ["--cb_explore --epsilon 0.1", "--cb_explore_adf --dsjson", "--cb_explore_adf --no_such_flag"],
)
def test_unusable_candidates_are_rejected_with_their_arguments(args: str) -> None:
    with pytest.raises(CandidateError, match=r"cb_explore|dsjson|rejected"):
        VWCandidate(args)
