"""LearnerConfig: defaults that match the decision service's, and errors naming the variable."""

from __future__ import annotations

import pytest

from emma.decision.config import DecisionConfig
from emma.learner.config import LearnerConfig
from emma.runtime.config import ConfigError, load_config


def test_defaults_agree_with_the_decision_service() -> None:
    learner = load_config(LearnerConfig, [], {})
    decision = load_config(DecisionConfig, [], {})
    assert learner.vw_args == decision.vw_args
    assert learner.reward_window_s == decision.reward_window_s == 3600.0
    assert learner.model_key == decision.model_key == "emma:model"
    assert (learner.decision_stream, learner.reward_stream) == (
        decision.decision_stream,
        decision.reward_stream,
    )
    assert (learner.aggregation, learner.default_reward) == ("sum", 0.0)
    assert learner.port == 50054
    assert (learner.outcome_grace_s, learner.held_outcomes_max) == (10.0, 10_000)


def test_flags_override_the_environment() -> None:
    config = load_config(
        LearnerConfig,
        ["--aggregation", "sum", "--reward-window-s", "0.5"],
        {"EMMA_REWARD_AGGREGATION": "first", "EMMA_DEFAULT_REWARD": "-0.1"},
    )
    assert (config.aggregation, config.reward_window_s, config.default_reward) == (
        "sum",
        0.5,
        -0.1,
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"EMMA_REWARD_AGGREGATION": "max"}, "EMMA_REWARD_AGGREGATION"),
        ({"EMMA_REWARD_WINDOW_S": "0"}, "EMMA_REWARD_WINDOW_S"),
        ({"EMMA_LEARNER_PUBLISH_S": "-1"}, "EMMA_LEARNER_PUBLISH_S"),
        ({"EMMA_APPRENTICE_THRESHOLD": "1.5"}, "EMMA_APPRENTICE_THRESHOLD"),
        ({"EMMA_VW_ARGS": "--cb_explore_adf --epsilon 0.5"}, "EMMA_EPSILON_MAX"),
        ({"EMMA_VW_ARGS": "--cb_explore_adf --epsilon 0.3", "EMMA_EPSILON_MAX": "0.4"}, None),
        ({"EMMA_LEARNER_LEASE_S": "0.1"}, "EMMA_LEARNER_LEASE_S"),
        ({"EMMA_OUTCOME_GRACE_S": "-1"}, "EMMA_OUTCOME_GRACE_S"),
        ({"EMMA_OUTCOME_GRACE_S": "soon"}, "EMMA_OUTCOME_GRACE_S"),
        ({"EMMA_HELD_OUTCOMES_MAX": "0"}, "EMMA_HELD_OUTCOMES_MAX"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], named: str | None) -> None:
    if named is None:
        assert load_config(LearnerConfig, [], environ).epsilon_max == 0.4
        return
    with pytest.raises(ConfigError, match=named):
        load_config(LearnerConfig, [], environ)
