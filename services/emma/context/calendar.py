"""Calendar facts of a local date: meteorological season and public holidays."""

from __future__ import annotations

import bisect
import dataclasses
import functools
import logging
import warnings
from collections.abc import Iterable
from datetime import date
from typing import NamedTuple

import holidays

from emma.context import countries
from emma.context.seasons import RETAIL_SEASON_NAMES

__all__ = ["RETAIL_SEASON_NAMES", "SEASON_NAMES", "Holiday", "HolidayCalendar", "season"]

log = logging.getLogger(__name__)

SEASON_NAMES = ("spring", "summer", "autumn", "winter")
# Meteorological seasons of the northern hemisphere by month; the south is six months off.
_NORTHERN_SEASON = {
    12: "winter", 1: "winter", 2: "winter",
    3: "spring", 4: "spring", 5: "spring",
    6: "summer", 7: "summer", 8: "summer",
    9: "autumn", 10: "autumn", 11: "autumn",
}  # fmt: skip
_FLIPPED = {"spring": "autumn", "summer": "winter", "autumn": "spring", "winter": "summer"}


def season(day: date, southern_hemisphere: bool) -> str:
    """The meteorological season of a date: spring, summer, autumn or winter."""
    name = _NORTHERN_SEASON[day.month]
    return _FLIPPED[name] if southern_hemisphere else name


# --- public holidays -------------------------------------------------------------------------

PUBLIC_ONLY: tuple[str, ...] = (countries.PUBLIC,)


class Holiday(NamedTuple):
    """A public holiday; a named tuple, as it keys per-request caches (hashed in C)."""

    day: date
    name: str


@dataclasses.dataclass(frozen=True)
class _Year:
    holidays: tuple[Holiday, ...]  # in date order
    days: tuple[date, ...]
    by_day: dict[date, Holiday]


@functools.lru_cache(maxsize=4096)
def _holidays_of_year(
    country: str, region: str, categories: tuple[str, ...], year: int, language: str
) -> _Year:
    # An explicit language keeps names independent of the process locale.
    chosen = language if countries.supports_language(country, language) else None
    # The package warns (UserWarning) when it lacks a year's data for a country, as for
    # India's lunar holidays outside 2001-2035: a log line says so instead, once per
    # cached year. The event loop is the only caller, so the filter is ours alone.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calendar = holidays.country_holidays(
            country,
            subdiv=region or None,
            years=year,
            language=chosen or countries.default_language(country),
            categories=categories,
        )
    for warning in caught:
        log.warning(
            "holiday calendar incomplete",
            extra={"country": country, "year": year, "detail": str(warning.message)},
        )
    found = tuple(Holiday(day, name) for day, name in sorted(calendar.items()) if day.year == year)
    return _Year(found, tuple(h.day for h in found), {h.day: h for h in found})


def holiday_categories(country: str, wanted: Iterable[str]) -> tuple[str, ...]:
    """The categories of `wanted` that `country` knows, sorted; always with "public"."""
    known = countries.holiday_categories(country)
    return tuple(sorted({countries.PUBLIC, *(c for c in wanted if c in known)}))


class HolidayCalendar:
    """Public holidays by country, subdivision and category; calendars are cached per year.

    Country and region must be known (countries.is_country / canonical_region); the
    categories default to public holidays only. Regional holidays that hold only in some
    municipalities (Mariä Himmelfahrt in Bavaria, Fronleichnam in parts of Saxony and
    Thuringia) are in the holidays package's "catholic" category; a store opts in.
    """

    # How far ahead the next holiday is looked for.
    LOOKAHEAD_YEARS = 2

    def __init__(self, language: str = "") -> None:
        self.language = language

    def of_year(
        self, country: str, region: str, year: int, categories: tuple[str, ...] = PUBLIC_ONLY
    ) -> tuple[Holiday, ...]:
        """The holidays of one year, in date order."""
        return _holidays_of_year(country, region, categories, year, self.language).holidays

    def on(
        self, country: str, region: str, day: date, categories: tuple[str, ...] = PUBLIC_ONLY
    ) -> Holiday | None:
        """The holiday on `day`, if any."""
        return _holidays_of_year(country, region, categories, day.year, self.language).by_day.get(
            day
        )

    def next_after(
        self, country: str, region: str, day: date, categories: tuple[str, ...] = PUBLIC_ONLY
    ) -> Holiday | None:
        """The first holiday strictly after `day`, within the lookahead (across New Year)."""
        for year in range(day.year, day.year + self.LOOKAHEAD_YEARS):
            table = _holidays_of_year(country, region, categories, year, self.language)
            index = bisect.bisect_right(table.days, day)
            if index < len(table.holidays):
                return table.holidays[index]
        return None
