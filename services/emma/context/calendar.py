"""Calendar facts of a local date: meteorological season, public holidays, retail seasons."""

from __future__ import annotations

import dataclasses
import functools
from datetime import date, timedelta

import holidays
from dateutil.easter import easter

SEASON_NAMES = ("spring", "summer", "autumn", "winter")
# Meteorological seasons of the northern hemisphere by month; the south is six months off.
_NORTHERN_SEASON = {
    12: "winter", 1: "winter", 2: "winter",
    3: "spring", 4: "spring", 5: "spring",
    6: "summer", 7: "summer", 8: "summer",
    9: "autumn", 10: "autumn", 11: "autumn",
}  # fmt: skip
_FLIPPED = {"spring": "autumn", "summer": "winter", "autumn": "spring", "winter": "summer"}

# Retail seasons in the order they are reported.
RETAIL_SEASON_NAMES = (
    "advent",
    "christmas",
    "easter",
    "summer_sale",
    "winter_sale",
    "back_to_school",
    "black_friday",
)


def season(day: date, southern_hemisphere: bool) -> str:
    """The meteorological season of a date: spring, summer, autumn or winter."""
    name = _NORTHERN_SEASON[day.month]
    return _FLIPPED[name] if southern_hemisphere else name


# --- public holidays -------------------------------------------------------------------------


@functools.cache
def _supported() -> dict[str, frozenset[str]]:
    return {
        country: frozenset(subdivisions)
        for country, subdivisions in holidays.list_supported_countries().items()
    }


def is_country(code: str) -> bool:
    """Whether `code` is an ISO 3166-1 alpha-2 country the holidays package knows."""
    return code in _supported()


def canonical_region(country: str, region: str) -> str | None:
    """The holidays package's spelling of a subdivision of `country`, None when unknown."""
    for known in _supported().get(country, ()):
        if known.upper() == region.upper():
            return known
    return None


@functools.cache
def _languages(country: str) -> tuple[str | None, frozenset[str]]:
    entity = holidays.country_holidays(country, years=[])
    return entity.default_language, frozenset(entity.supported_languages)


def supports_language(country: str, language: str) -> bool:
    """Whether holiday names of `country` are available in `language` (e.g. "en_US")."""
    return language in _languages(country)[1]


@dataclasses.dataclass(frozen=True)
class Holiday:
    day: date
    name: str


@functools.lru_cache(maxsize=2048)
def _holidays_of_year(country: str, region: str, year: int, language: str) -> tuple[Holiday, ...]:
    default_language, languages = _languages(country)
    # An explicit language keeps names independent of the process locale.
    chosen = language if language in languages else default_language
    calendar = holidays.country_holidays(
        country, subdiv=region or None, years=year, language=chosen
    )
    return tuple(Holiday(day, name) for day, name in sorted(calendar.items()) if day.year == year)


class HolidayCalendar:
    """Public holidays by country and subdivision; calendars are cached per year."""

    # How far ahead the next holiday is looked for.
    LOOKAHEAD_YEARS = 2

    def __init__(self, language: str = "") -> None:
        self.language = language

    def of_year(self, country: str, region: str, year: int) -> tuple[Holiday, ...]:
        """The holidays of one year, in date order; country and region must be known."""
        return _holidays_of_year(country, region, year, self.language)

    def on(self, country: str, region: str, day: date) -> Holiday | None:
        """The holiday on `day`, if any."""
        for holiday in self.of_year(country, region, day.year):
            if holiday.day == day:
                return holiday
        return None

    def next_after(self, country: str, region: str, day: date) -> Holiday | None:
        """The first holiday strictly after `day`, within the lookahead."""
        for year in range(day.year, day.year + self.LOOKAHEAD_YEARS):
            for holiday in self.of_year(country, region, year):
                if holiday.day > day:
                    return holiday
        return None


# --- retail seasons --------------------------------------------------------------------------


def first_advent(year: int) -> date:
    """The first Sunday of Advent: the fourth Sunday before Christmas Day."""
    christmas = date(year, 12, 25)
    # Days back to the last Sunday before the 25th (isoweekday 7 is Sunday).
    fourth_advent = christmas - timedelta(days=christmas.isoweekday() % 7 or 7)
    return fourth_advent - timedelta(weeks=3)


def easter_sunday(year: int) -> date:
    """Western (Gregorian) Easter Sunday."""
    day = easter(year)
    assert isinstance(day, date)
    return day


def black_friday(year: int) -> date:
    """The day after the fourth Thursday of November (US Thanksgiving)."""
    first = date(year, 11, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(weeks=3, days=1)


def _last_monday(year: int, month: int) -> date:
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=last.weekday())


def _within(day: date, start: date, end: date) -> bool:
    return start <= day <= end


def retail_seasons(day: date, southern_hemisphere: bool = False) -> tuple[str, ...]:
    """The retail seasons in force on a local date, in RETAIL_SEASON_NAMES order.

    - advent: first Advent Sunday to 24 December; christmas: 24 to 26 December;
    - easter: Good Friday to Easter Monday;
    - summer_sale / winter_sale: two weeks from the last Monday of July / January (the
      traditional German Sommer- and Winterschlussverkauf); swapped in the south;
    - back_to_school: approximate, 1 August to 15 September (south: 15 January to
      15 February); real school starts vary by region;
    - black_friday: Black Friday to Cyber Monday.
    """
    year = day.year
    summer_month, winter_month = (1, 7) if southern_hemisphere else (7, 1)
    summer_start = _last_monday(year, summer_month)
    winter_start = _last_monday(year, winter_month)
    easter_day = easter_sunday(year)
    friday = black_friday(year)
    if southern_hemisphere:
        school = (date(year, 1, 15), date(year, 2, 15))
    else:
        school = (date(year, 8, 1), date(year, 9, 15))
    active = {
        "advent": _within(day, first_advent(year), date(year, 12, 24)),
        "christmas": _within(day, date(year, 12, 24), date(year, 12, 26)),
        "easter": _within(day, easter_day - timedelta(days=2), easter_day + timedelta(days=1)),
        "summer_sale": _within(day, summer_start, summer_start + timedelta(days=13)),
        "winter_sale": _within(day, winter_start, winter_start + timedelta(days=13)),
        "back_to_school": _within(day, *school),
        "black_friday": _within(day, friday, friday + timedelta(days=3)),
    }
    return tuple(name for name in RETAIL_SEASON_NAMES if active[name])
