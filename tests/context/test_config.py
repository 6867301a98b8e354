"""ContextConfig: defaults, environment and fail-fast validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from emma.context.config import DEFAULT_SIGNALS_PATH, DEFAULT_STORES_PATH, ContextConfig
from emma.context.seasons import DEFAULT_RETAIL_SEASONS_PATH
from emma.runtime.config import ConfigError, load_config


def test_defaults() -> None:
    config = load_config(ContextConfig, [], {})
    assert (config.host, config.port) == ("127.0.0.1", 50053)
    assert config.stores_path == DEFAULT_STORES_PATH and DEFAULT_STORES_PATH.is_file()
    assert (config.default_time_zone, config.default_country) == ("Europe/Berlin", "DE")
    assert config.dayparts == "morning=5,lunch=11,afternoon=14,evening=17,night=22"
    assert config.signals_path == str(DEFAULT_SIGNALS_PATH) and DEFAULT_SIGNALS_PATH.is_file()
    assert config.retail_seasons_path == DEFAULT_RETAIL_SEASONS_PATH


def test_environment_and_flags(tmp_path: Path) -> None:
    stores = tmp_path / "stores.yaml"
    stores.write_text("stores: []\n")
    config = load_config(
        ContextConfig,
        ["--port", "0"],
        {
            "EMMA_STORES": str(stores),
            "EMMA_DEFAULT_TIME_ZONE": "Australia/Sydney",
            "EMMA_DEFAULT_COUNTRY": "AU",
            "EMMA_SIGNALS": "",
            "EMMA_RETAIL_SEASONS": str(stores),
        },
    )
    assert (config.port, config.stores_path, config.default_country) == (0, stores, "AU")
    assert (config.signals_path, config.retail_seasons_path) == ("", stores)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"EMMA_CONTEXT_PORT": "70000"}, "EMMA_CONTEXT_PORT"),
        ({"EMMA_DEFAULT_TIME_ZONE": "Europe/Atlantis"}, "EMMA_DEFAULT_TIME_ZONE"),
        ({"EMMA_DEFAULT_COUNTRY": "XX"}, "EMMA_DEFAULT_COUNTRY"),
        ({"EMMA_DAYPARTS": "morning=5,brunch=10"}, "EMMA_DAYPARTS"),
        ({"EMMA_DAYPARTS": "morning=29"}, "EMMA_DAYPARTS"),
        ({"EMMA_STORES": "/nonexistent/stores.yaml"}, "EMMA_STORES"),
        ({"EMMA_SIGNALS": "/nonexistent/signals.yaml"}, "EMMA_SIGNALS"),
        ({"EMMA_RETAIL_SEASONS": "/nonexistent/seasons.yaml"}, "EMMA_RETAIL_SEASONS"),
        ({"EMMA_REGION_RADIUS_M": "-1"}, "EMMA_REGION_RADIUS_M"),
        ({"EMMA_PROVIDER_TIMEOUT_S": "0"}, "EMMA_PROVIDER_TIMEOUT_S"),
        ({"EMMA_HOLIDAY_LANGUAGE": "xx_XX"}, "EMMA_HOLIDAY_LANGUAGE"),
        ({"EMMA_SHUTDOWN_GRACE_S": "-1"}, "EMMA_SHUTDOWN_GRACE_S"),
    ],
)
def test_bad_values_fail_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_config(ContextConfig, [], environ)
