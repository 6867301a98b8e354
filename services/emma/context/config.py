"""Configuration of the context service, from EMMA_* variables and flags."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from emma.context import clock, countries
from emma.context.seasons import DEFAULT_RETAIL_SEASONS_PATH
from emma.runtime.config import check_port, require, setting

# The bundled demo registry; a deployment points EMMA_STORES at its own file.
DEFAULT_STORES_PATH = Path(__file__).resolve().parent.parent / "demo" / "stores.yaml"
# Typical weather per month; a deployment adds a live provider or its own file.
DEFAULT_SIGNALS_PATH = Path(__file__).resolve().parent / "weather.yaml"


@dataclasses.dataclass(frozen=True)
class ContextConfig:
    """The context service: local time, daypart, season, holidays and stores."""

    host: str = setting("127.0.0.1", "EMMA_CONTEXT_HOST", "address to listen on")
    port: int = setting(50053, "EMMA_CONTEXT_PORT", "port to listen on (0: any free port)")
    metrics_port: int = setting(
        9463, "EMMA_CONTEXT_METRICS_PORT", "port serving Prometheus /metrics; 0: off"
    )
    shutdown_grace_s: float = setting(
        5.0, "EMMA_SHUTDOWN_GRACE_S", "seconds in-flight calls may finish on shutdown"
    )
    stores_path: Path = setting(  # noqa: RUF009 (a Path is immutable)
        DEFAULT_STORES_PATH, "EMMA_STORES", "the store registry (YAML, or JSON for a .json file)"
    )
    signals_path: str = setting(
        str(DEFAULT_SIGNALS_PATH),
        "EMMA_SIGNALS",
        "signal file (YAML) of the static-file provider; empty: none",
    )
    retail_seasons_path: Path = setting(  # noqa: RUF009 (a Path is immutable)
        DEFAULT_RETAIL_SEASONS_PATH, "EMMA_RETAIL_SEASONS", "the retail season definitions (YAML)"
    )
    provider_timeout_s: float = setting(
        0.05, "EMMA_PROVIDER_TIMEOUT_S", "seconds a signal provider may take before it is skipped"
    )
    default_time_zone: str = setting(
        "Europe/Berlin", "EMMA_DEFAULT_TIME_ZONE", "IANA zone when neither store nor place tell"
    )
    default_country: str = setting(
        "DE", "EMMA_DEFAULT_COUNTRY", "ISO 3166-1 alpha-2 country when the request has none"
    )
    dayparts: str = setting(
        clock.DEFAULT_DAYPARTS,
        "EMMA_DAYPARTS",
        "daypart start hours (local), name=hour,...",
    )
    holiday_language: str = setting(
        "", "EMMA_HOLIDAY_LANGUAGE", "language of holiday names, e.g. en_US; empty: the country's"
    )
    region_radius_m: float = setting(
        25_000.0,
        "EMMA_REGION_RADIUS_M",
        "a location this close to its nearest store takes that store's country and region",
    )

    def __post_init__(self) -> None:
        check_port(self.port, "EMMA_CONTEXT_PORT")
        check_port(self.metrics_port, "EMMA_CONTEXT_METRICS_PORT")
        require(
            math.isfinite(self.shutdown_grace_s) and self.shutdown_grace_s >= 0,
            f"EMMA_SHUTDOWN_GRACE_S={self.shutdown_grace_s}: must be >= 0",
        )
        require(self.stores_path.is_file(), f"EMMA_STORES={self.stores_path}: no such file")
        require(
            not self.signals_path or Path(self.signals_path).is_file(),
            f"EMMA_SIGNALS={self.signals_path}: no such file",
        )
        require(
            self.retail_seasons_path.is_file(),
            f"EMMA_RETAIL_SEASONS={self.retail_seasons_path}: no such file",
        )
        require(
            math.isfinite(self.provider_timeout_s) and 0 < self.provider_timeout_s <= 10,
            f"EMMA_PROVIDER_TIMEOUT_S={self.provider_timeout_s}: must be in (0, 10]",
        )
        require(
            clock.is_time_zone(self.default_time_zone),
            f"EMMA_DEFAULT_TIME_ZONE={self.default_time_zone!r}: not an IANA time zone",
        )
        require(
            countries.is_country(self.default_country),
            f"EMMA_DEFAULT_COUNTRY={self.default_country!r}: not a country with known holidays",
        )
        try:
            clock.parse_dayparts(self.dayparts)
        except ValueError as error:
            require(False, f"EMMA_DAYPARTS={self.dayparts!r}: {error}")
        require(
            not self.holiday_language
            or countries.supports_language(self.default_country, self.holiday_language),
            f"EMMA_HOLIDAY_LANGUAGE={self.holiday_language!r}: "
            f"not a holiday language of {self.default_country}",
        )
        require(
            math.isfinite(self.region_radius_m) and self.region_radius_m >= 0,
            f"EMMA_REGION_RADIUS_M={self.region_radius_m}: must be >= 0",
        )
