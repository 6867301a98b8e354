"""Config loading: environment, flags, defaults and clear errors."""

from __future__ import annotations

import dataclasses

import pytest

from emma.runtime.config import ConfigError, check_port, load_config, setting


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """A sample service config."""

    port: int = setting(50060, "SAMPLE_PORT", "listening port")
    ratio: float = setting(0.5, "SAMPLE_RATIO", "a ratio")
    name: str = setting("x", "SAMPLE_NAME", "a name", choices=("x", "y"))
    verbose: bool = setting(False, "SAMPLE_VERBOSE", "talk more")

    def __post_init__(self) -> None:
        check_port(self.port, "SAMPLE_PORT")


def test_defaults_apply_without_environment() -> None:
    assert load_config(SampleConfig, [], {}) == SampleConfig()


def test_environment_then_flags_override_defaults() -> None:
    config = load_config(
        SampleConfig, ["--port", "7000"], {"SAMPLE_PORT": "6000", "SAMPLE_VERBOSE": "yes"}
    )
    assert config.port == 7000
    assert config.verbose is True


def test_config_is_frozen() -> None:
    config = load_config(SampleConfig, [], {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SAMPLE_PORT": "many"}, "SAMPLE_PORT"),
        ({"SAMPLE_PORT": "70000"}, "SAMPLE_PORT"),
        ({"SAMPLE_RATIO": "nan"}, "SAMPLE_RATIO"),
        ({"SAMPLE_VERBOSE": "perhaps"}, "SAMPLE_VERBOSE"),
        ({"SAMPLE_NAME": "z"}, "SAMPLE_NAME"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(SampleConfig, [], environ)
