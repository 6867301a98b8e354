"""README stays true: every configuration variable the services read is documented there."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from emma.context.config import ContextConfig
from emma.decision.config import DecisionConfig
from emma.learner.config import LearnerConfig
from emma.profile.config import ProfileConfig
from emma.triggers.config import TriggerConfig

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize(
    "config_type", [DecisionConfig, ProfileConfig, ContextConfig, LearnerConfig, TriggerConfig]
)
def test_every_config_variable_is_in_the_readme_table(config_type: type) -> None:
    variables = [
        field.metadata["env"]
        for field in dataclasses.fields(config_type)
        if "env" in field.metadata
    ]
    assert variables
    missing = [name for name in variables if f"| `{name}` |" not in README]
    assert missing == []


def test_readme_gives_the_two_commands() -> None:
    assert "make demo" in README
    assert "make test" in README
