"""Retail seasons (Advent, Easter, summer sale, ...) from a YAML data file, for any year.

A season is a window of days given by date rules: fixed days ("12-24"), moveable feasts
("easter - 2", "advent"), the n-th weekday of a month ("last mon of jul", "4th thu of nov
+ 1") or the weekday before or after a fixed day ("sun before 12-25"). The bundled file
retail_seasons.yaml documents the format; load_retail_seasons validates a file and names
the file, season and field of anything wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from dateutil.easter import EASTER_ORTHODOX, EASTER_WESTERN, easter

from emma.context import countries
from emma.context.datafiles import DataFileError, read_data

DEFAULT_RETAIL_SEASONS_PATH = Path(__file__).resolve().parent / "retail_seasons.yaml"
# The years a window is checked for at load: those the resolver accepts requests for.
CHECKED_YEARS = range(1900, 2101)
MAX_WINDOW_DAYS = 366

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "last": -1}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_OFFSET = re.compile(r"^(?P<anchor>.*\S)\s+(?P<sign>[+-])\s*(?P<days>\d{1,3})$")
_FIXED = re.compile(r"^(\d{1,2})-(\d{1,2})$")
_NTH = re.compile(r"^(1st|2nd|3rd|4th|last)\s+([a-z]{3})\s+of\s+([a-z]{3})$")
_RELATIVE = re.compile(r"^([a-z]{3})\s+(before|after)\s+(\d{1,2})-(\d{1,2})$")
_RULE_EXAMPLES = "'12-24', 'easter - 2', 'advent', 'last mon of jul', 'sun before 12-25'"
_SEASON_FIELDS = frozenset({"name", "start", "end", "days", "north", "south", "countries"})
_WINDOW_FIELDS = frozenset({"start", "end", "days"})


class RetailSeasonError(ValueError):
    """The retail season file is malformed; the message names the file, season and field."""


# --- moveable feasts -------------------------------------------------------------------------


def easter_sunday(year: int) -> date:
    """Western (Gregorian) Easter Sunday."""
    return easter(year, EASTER_WESTERN)


def orthodox_easter(year: int) -> date:
    """Orthodox Easter Sunday, as a Gregorian date."""
    return easter(year, EASTER_ORTHODOX)


def first_advent(year: int) -> date:
    """The first Sunday of Advent: the fourth Sunday before Christmas Day."""
    return weekday_before(date(year, 12, 25), 6) - timedelta(weeks=3)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1..4, or -1 for the last) `weekday` (0 Monday) of a month."""
    if n == -1:
        following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return weekday_before(following, weekday)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def weekday_before(day: date, weekday: int) -> date:
    """The last `weekday` (0 Monday) strictly before `day`."""
    return day - timedelta(days=(day.weekday() - weekday - 1) % 7 + 1)


def weekday_after(day: date, weekday: int) -> date:
    """The first `weekday` (0 Monday) strictly after `day`."""
    return day + timedelta(days=(weekday - day.weekday() - 1) % 7 + 1)


def black_friday(year: int) -> date:
    """The day after the fourth Thursday of November (US Thanksgiving)."""
    return nth_weekday(year, 11, 3, 4) + timedelta(days=1)


_FEASTS: dict[str, Callable[[int], date]] = {
    "easter": easter_sunday,
    "orthodox_easter": orthodox_easter,
    "advent": first_advent,
}


# --- date rules and windows ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DateRule:
    """A day of any year, e.g. "easter - 2"; `on(year)` computes it."""

    text: str
    anchor: Callable[[int], date] = dataclasses.field(repr=False, compare=False)
    offset_days: int = 0
    # The rule without its offset: two rules with the same anchor are a fixed distance apart.
    anchor_text: str = ""

    def on(self, year: int) -> date:
        return self.anchor(year) + timedelta(days=self.offset_days)


def _fixed_day(month: int, day: int, text: str) -> tuple[int, int]:
    try:
        date(2001, month, day)  # not a leap year: 29 February is not a day of every year
    except ValueError:
        raise ValueError(f"{text!r} is not a day of every year (month-day)") from None
    return month, day


def _weekday(name: str) -> int:
    if name not in _WEEKDAYS:
        raise ValueError(f"unknown weekday {name!r}, expected one of {list(_WEEKDAYS)}")
    return _WEEKDAYS.index(name)


def parse_rule(text: str) -> DateRule:
    """Parses a date rule; raises ValueError saying what is wrong."""
    normalised = " ".join(text.lower().split())
    offset = 0
    anchor_text = normalised
    match = _OFFSET.match(normalised)
    if match:
        anchor_text = match["anchor"]
        offset = int(match["days"]) * (1 if match["sign"] == "+" else -1)
    anchor: Callable[[int], date]
    if anchor_text in _FEASTS:
        anchor = _FEASTS[anchor_text]
    elif fixed := _FIXED.match(anchor_text):
        month, day = _fixed_day(int(fixed[1]), int(fixed[2]), anchor_text)
        anchor = functools.partial(_on_fixed, month=month, day=day)
    elif nth := _NTH.match(anchor_text):
        weekday = _weekday(nth[2])
        if nth[3] not in _MONTHS:
            raise ValueError(f"unknown month {nth[3]!r}, expected one of {list(_MONTHS)}")
        anchor = functools.partial(
            nth_weekday, month=_MONTHS.index(nth[3]) + 1, weekday=weekday, n=_ORDINALS[nth[1]]
        )
    elif relative := _RELATIVE.match(anchor_text):
        weekday = _weekday(relative[1])
        month, day = _fixed_day(int(relative[3]), int(relative[4]), anchor_text.split()[-1])
        anchor = functools.partial(
            _weekday_before if relative[2] == "before" else _weekday_after,
            month=month,
            day=day,
            weekday=weekday,
        )
    else:
        raise ValueError(f"{text!r} is not a date rule, expected e.g. {_RULE_EXAMPLES}")
    return DateRule(text, anchor, offset, anchor_text)


def _on_fixed(year: int, *, month: int, day: int) -> date:
    return date(year, month, day)


def _weekday_before(year: int, *, month: int, day: int, weekday: int) -> date:
    return weekday_before(date(year, month, day), weekday)


def _weekday_after(year: int, *, month: int, day: int, weekday: int) -> date:
    return weekday_after(date(year, month, day), weekday)


@dataclasses.dataclass(frozen=True)
class Window:
    """From `start` to `end` inclusive, or for `days` days; an end before the start is in
    the following year (a window across New Year)."""

    start: DateRule
    end: DateRule | None = None
    days: int | None = None

    def span(self, year: int) -> tuple[date, date]:
        """The first and last day of the window that starts in `year`."""
        start = self.start.on(year)
        if self.end is None:
            return start, start + timedelta(days=(self.days or 1) - 1)
        end = self.end.on(year)
        if end < start:
            end = self.end.on(year + 1)
        return start, end


@dataclasses.dataclass(frozen=True)
class RetailSeason:
    """A named season with its window per hemisphere (None: not a season there)."""

    name: str
    north: Window | None
    south: Window | None
    countries: frozenset[str] = frozenset()  # empty: every country

    def window(self, southern: bool) -> Window | None:
        return self.south if southern else self.north


Span = tuple[date, date] | None


class RetailCalendar:
    """The retail seasons of a data file; which are in force on a day, at a place."""

    def __init__(self, seasons: Sequence[RetailSeason]) -> None:
        self.seasons = tuple(seasons)
        self.names = tuple(season.name for season in self.seasons)
        self._spans = functools.lru_cache(maxsize=64)(self._compute_spans)

    def _compute_spans(self, year: int, southern: bool) -> tuple[Span, ...]:
        spans: list[Span] = []
        for season in self.seasons:
            window = season.window(southern)
            spans.append(window.span(year) if window else None)
        return tuple(spans)

    def active(self, day: date, southern: bool = False, country: str = "") -> tuple[str, ...]:
        """The seasons in force on a local date, in file order."""
        this_year = self._spans(day.year, southern)
        last_year = self._spans(day.year - 1, southern)  # windows running into this year
        found = []
        for season, now, before in zip(self.seasons, this_year, last_year, strict=True):
            if season.countries and country not in season.countries:
                continue
            if (now and now[0] <= day <= now[1]) or (before and before[0] <= day <= before[1]):
                found.append(season.name)
        return tuple(found)


# --- loading ---------------------------------------------------------------------------------


def load_retail_seasons(path: Path) -> RetailCalendar:
    """Reads and validates a retail season file; raises RetailSeasonError naming the field."""
    try:
        data = read_data(path)
    except (OSError, DataFileError) as error:
        raise RetailSeasonError(f"{path}: cannot read the retail season file: {error}") from None
    return parse_retail_seasons(data, str(path))


def parse_retail_seasons(data: Any, source: str) -> RetailCalendar:
    """Validates the parsed YAML of a retail season file; `source` names it in errors."""
    if (
        not isinstance(data, dict)
        or set(data) != {"seasons"}
        or not isinstance(data["seasons"], list)
    ):
        raise RetailSeasonError(f"{source}: expected a mapping with only a list `seasons`")
    seasons: list[RetailSeason] = []
    for index, entry in enumerate(data["seasons"]):
        season = _parse_season(entry, f"{source}: seasons[{index}]")
        if season.name in (s.name for s in seasons):
            raise RetailSeasonError(f"{source}: seasons[{index}] ({season.name}).name: given twice")
        seasons.append(season)
    return RetailCalendar(seasons)


def _parse_season(entry: Any, where: str) -> RetailSeason:
    if not isinstance(entry, dict):
        raise RetailSeasonError(f"{where}: expected a mapping")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RetailSeasonError(f"{where}.name: expected a snake_case name like 'summer_sale'")
    where = f"{where} ({name})"
    unknown = sorted(set(entry) - _SEASON_FIELDS)
    if unknown:
        raise RetailSeasonError(
            f"{where}.{unknown[0]}: unknown field, expected one of {sorted(_SEASON_FIELDS)}"
        )
    shared = {key: entry[key] for key in _WINDOW_FIELDS if key in entry}
    north_south = [key for key in ("north", "south") if key in entry]
    if shared and north_south:
        raise RetailSeasonError(
            f"{where}.{north_south[0]}: give either start/end/days or north/south, not both"
        )
    north: Window | None
    south: Window | None
    if shared:
        north = south = _parse_window(shared, where)
    elif north_south:
        north = _parse_window(entry["north"], f"{where}.north") if "north" in entry else None
        south = _parse_window(entry["south"], f"{where}.south") if "south" in entry else None
    else:
        raise RetailSeasonError(f"{where}.start: missing, and no north or south window given")
    return RetailSeason(name, north, south, _parse_countries(entry.get("countries"), where))


def _parse_window(value: Any, where: str) -> Window:
    if not isinstance(value, dict):
        raise RetailSeasonError(f"{where}: expected a mapping with start and end or days")
    unknown = sorted(set(value) - _WINDOW_FIELDS)
    if unknown:
        raise RetailSeasonError(f"{where}.{unknown[0]}: unknown field, expected start, end, days")
    if "start" not in value:
        raise RetailSeasonError(f"{where}.start: missing")
    if ("end" in value) == ("days" in value):
        raise RetailSeasonError(f"{where}.end: give exactly one of end and days")
    start = _rule(value["start"], f"{where}.start")
    if "days" in value:
        days = value["days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
            raise RetailSeasonError(f"{where}.days: expected a whole number 1..{MAX_WINDOW_DAYS}")
        return Window(start, days=days)
    window = Window(start, end=_rule(value["end"], f"{where}.end"))
    _check_window(window, where)
    return window


def _rule(value: Any, where: str) -> DateRule:
    if not isinstance(value, str):
        raise RetailSeasonError(f"{where}: expected a date rule like {_RULE_EXAMPLES}")
    try:
        rule = parse_rule(value)
    except ValueError as error:
        raise RetailSeasonError(f"{where}: {error}") from None
    try:
        rule.on(CHECKED_YEARS.start)
    except ValueError as error:  # e.g. an offset leading outside the date range
        raise RetailSeasonError(f"{where}: {value!r}: {error}") from None
    return rule


def _check_window(window: Window, where: str) -> None:
    """Refuses windows that cross New Year in some years only, or that last over a year.

    "easter - 2" to "04-10" would run from Good Friday to 10 April in most years but
    for a whole year when Easter is late; that is a mistake in the file, not a season.
    """
    assert window.end is not None
    fixed_distance = window.start.anchor_text == window.end.anchor_text or (
        _FIXED.match(window.start.anchor_text) and _FIXED.match(window.end.anchor_text)
    )
    # Rules a fixed distance apart (leap days aside) need no look at every year.
    years = range(2000, 2002) if fixed_distance else CHECKED_YEARS
    crossing: dict[bool, int] = {}
    for year in years:
        start, end = window.start.on(year), window.end.on(year)
        crossing.setdefault(end < start, year)
        first, last = window.span(year)
        if (last - first).days + 1 > MAX_WINDOW_DAYS:
            raise RetailSeasonError(f"{where}.end: the window lasts over a year in {year}")
    if len(crossing) == 2:
        raise RetailSeasonError(
            f"{where}.end: ends before it starts in {crossing[True]} but not in "
            f"{crossing[False]}; use a rule that moves with the start"
        )


def _parse_countries(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not value:
        raise RetailSeasonError(f"{where}.countries: expected a list of ISO 3166-1 alpha-2 codes")
    for code in value:
        if not isinstance(code, str) or not countries.is_country(code):
            raise RetailSeasonError(
                f"{where}.countries: {code!r} is not an ISO 3166-1 alpha-2 code with holidays"
            )
    return frozenset(value)


@functools.cache
def default_retail_calendar() -> RetailCalendar:
    """The bundled retail seasons."""
    return load_retail_seasons(DEFAULT_RETAIL_SEASONS_PATH)


# The bundled file's season names: the vocabulary offer catalogs are checked against.
RETAIL_SEASON_NAMES = default_retail_calendar().names
