"""DecisionConfig: documented defaults, environment overrides and errors naming the variable."""

from __future__ import annotations

import pytest

from emma.decision.config import DEFAULT_CATALOG, DecisionConfig
from emma.runtime.config import ConfigError, load_config


def test_defaults() -> None:
    config = load_config(DecisionConfig, [], {})
    assert (config.host, config.port) == ("127.0.0.1", 50051)
    assert config.budget_ms == 50.0
    assert config.catalog_path == DEFAULT_CATALOG and DEFAULT_CATALOG.is_file()
    assert config.vw_args.startswith("--cb_explore_adf")
    assert (config.decision_stream, config.reward_stream) == ("emma:decisions", "emma:rewards")
    assert (config.profile_addr, config.context_addr) == ("127.0.0.1:50052", "127.0.0.1:50053")
    # Profiles and context are read in process, profiles from the one Redis unless told.
    assert config.dependencies == "in-process"
    assert config.profile_store_url == config.redis_url


def test_the_profile_store_can_be_its_own_redis() -> None:
    config = load_config(
        DecisionConfig, [], {"EMMA_PROFILE_REDIS_URL": "redis+cluster://profiles:7000"}
    )
    assert config.profile_store_url == "redis+cluster://profiles:7000"
    assert config.redis_url == "redis://127.0.0.1:6379/0"


def test_environment_overrides() -> None:
    config = load_config(
        DecisionConfig,
        [],
        {"EMMA_DECISION_BUDGET_MS": "20", "EMMA_FALLBACK_OFFER": "x", "EMMA_MAX_ACTIONS": "7"},
    )
    assert (config.budget_ms, config.fallback_offer_id, config.max_actions) == (20.0, "x", 7)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"EMMA_DECISION_BUDGET_MS": "0"}, "EMMA_DECISION_BUDGET_MS"),
        ({"EMMA_DECISION_PORT": "99999"}, "EMMA_DECISION_PORT"),
        ({"EMMA_MAX_ACTIONS": "0"}, "EMMA_MAX_ACTIONS"),
        ({"EMMA_VW_ARGS": "--oaa 3"}, "EMMA_VW_ARGS"),
        ({"EMMA_DEFAULT_TIME_ZONE": "Mars/Olympus"}, "EMMA_DEFAULT_TIME_ZONE"),
        ({"EMMA_DECISION_DEPENDENCIES": "grpc"}, "EMMA_DECISION_DEPENDENCIES"),
        ({"EMMA_PROFILE_REDIS_URL": "profiles:6379"}, "EMMA_PROFILE_REDIS_URL"),
        ({"EMMA_OUTCOME_BUFFER": "-1"}, "EMMA_OUTCOME_BUFFER"),
        ({"EMMA_DECISION_SHED_LAG_MS": "-1"}, "EMMA_DECISION_SHED_LAG_MS"),
        ({"EMMA_DECISION_QUEUE_TARGET_MS": "-1"}, "EMMA_DECISION_QUEUE_TARGET_MS"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(DecisionConfig, [], environ)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"EMMA_POLICY_MODE": "oracle"}, "EMMA_POLICY_MODE"),
        ({"EMMA_EXPLORATION_FLOOR": "0.5"}, "EMMA_EXPLORATION_FLOOR"),
        ({"EMMA_VW_ARGS": "--cb_explore_adf --squarecb --gamma_scale 0.1"}, "gamma_scale"),
        ({"EMMA_MODEL_POLL_S": "0"}, "EMMA_MODEL_POLL_S"),
    ],
)
def test_the_decision_service_checks_its_policy_settings(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(DecisionConfig, [], environ)
