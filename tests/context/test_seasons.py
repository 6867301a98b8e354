"""Retail seasons: date rules, moveable feasts, the bundled data file and its validation."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emma.context import seasons
from emma.context.calendar import RETAIL_SEASON_NAMES
from emma.context.seasons import (
    RetailSeasonError,
    default_retail_calendar,
    load_retail_seasons,
    parse_retail_seasons,
    parse_rule,
)

CALENDAR = default_retail_calendar()


def active(day: date, southern: bool = False, country: str = "DE") -> tuple[str, ...]:
    return CALENDAR.active(day, southern, country)


def gregorian_easter(year: int) -> date:
    """Easter Sunday by the anonymous Gregorian algorithm (Meeus/Jones/Butcher), written
    out independently of dateutil to check it."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


# --- date rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "year", "expected"),
    [
        ("12-24", 2026, date(2026, 12, 24)),
        ("easter", 2026, date(2026, 4, 5)),
        ("easter", 2027, date(2027, 3, 28)),
        ("easter", 2025, date(2025, 4, 20)),
        ("easter - 2", 2026, date(2026, 4, 3)),
        ("Easter  +  1", 2027, date(2027, 3, 29)),
        ("easter - 52", 2026, date(2026, 2, 12)),  # Weiberfastnacht
        ("orthodox_easter", 2026, date(2026, 4, 12)),
        ("orthodox_easter", 2027, date(2027, 5, 2)),
        ("advent", 2026, date(2026, 11, 29)),
        ("advent", 2023, date(2023, 12, 3)),
        ("advent", 2022, date(2022, 11, 27)),
        ("advent", 2027, date(2027, 11, 28)),
        ("last mon of jul", 2026, date(2026, 7, 27)),
        ("last mon of jan", 2026, date(2026, 1, 26)),
        ("4th thu of nov", 2026, date(2026, 11, 26)),
        ("4th thu of nov + 1", 2025, date(2025, 11, 28)),
        ("2nd sun of may", 2026, date(2026, 5, 10)),
        ("1st mon of sep", 2026, date(2026, 9, 7)),
        ("sun before 12-25", 2026, date(2026, 12, 20)),
        ("sun before 12-25", 2022, date(2022, 12, 18)),  # Christmas on a Sunday
        ("fri after 11-22", 2026, date(2026, 11, 27)),
        ("12-27 + 10", 2026, date(2027, 1, 6)),
    ],
)
def test_date_rules(rule: str, year: int, expected: date) -> None:
    assert parse_rule(rule).on(year) == expected


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("12-32", "not a day of every year"),
        ("02-29", "not a day of every year"),
        ("eastre", "not a date rule"),
        ("easter-2", "not a date rule"),
        ("easter + 1000", "not a date rule"),
        ("last mon of jly", "unknown month"),
        ("5th mon of jul", "not a date rule"),
        ("last mond of jul", "not a date rule"),
        ("sat before 13-01", "not a day of every year"),
        ("", "not a date rule"),
    ],
)
def test_bad_date_rules_are_refused(rule: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_rule(rule)


@settings(max_examples=300, deadline=None)
@given(year=st.integers(min_value=1583, max_value=4099))
def test_easter_agrees_with_an_independent_algorithm(year: int) -> None:
    assert seasons.easter_sunday(year) == gregorian_easter(year)


@settings(max_examples=300, deadline=None)
@given(year=st.integers(min_value=1900, max_value=2100))
def test_moveable_days_keep_their_definitions(year: int) -> None:
    advent = seasons.first_advent(year)
    assert advent.isoweekday() == 7 and date(year, 11, 27) <= advent <= date(year, 12, 3)
    friday = seasons.black_friday(year)
    assert friday.isoweekday() == 5 and date(year, 11, 23) <= friday <= date(year, 11, 29)
    for month in range(1, 13):
        last = seasons.nth_weekday(year, month, 0, -1)
        assert last.weekday() == 0 and last.month == month
        assert (last + timedelta(days=7)).month != month


# --- the bundled seasons -----------------------------------------------------------------------


def test_the_bundled_file_is_the_vocabulary() -> None:
    assert CALENDAR.names == RETAIL_SEASON_NAMES
    assert {"advent", "christmas", "easter", "summer_sale", "back_to_school"} <= set(
        RETAIL_SEASON_NAMES
    )
    assert {"black_friday", "winter_sale", "new_year", "carnival"} <= set(RETAIL_SEASON_NAMES)


def test_advent_2026() -> None:
    assert "advent" not in active(date(2026, 11, 28))
    assert "advent" in active(date(2026, 11, 29))
    assert "advent" in active(date(2026, 12, 24))
    assert "advent" not in active(date(2026, 12, 25))


def test_christmas_and_easter_windows() -> None:
    assert active(date(2026, 12, 24)) == ("advent", "christmas")
    assert active(date(2026, 12, 26)) == ("christmas",)
    assert "christmas" not in active(date(2026, 12, 27))
    easter_days = [d for d in range(1, 9) if "easter" in active(date(2026, 4, d))]
    assert easter_days == [3, 4, 5, 6]  # Good Friday to Easter Monday


def test_black_friday_to_cyber_monday() -> None:
    days = [
        d.day
        for d in (date(2026, 11, 26) + timedelta(days=n) for n in range(6))
        if "black_friday" in active(d)
    ]
    assert days == [27, 28, 29, 30]


def test_new_year_runs_across_the_turn_of_the_year() -> None:
    assert "new_year" not in active(date(2026, 12, 26))
    assert "new_year" in active(date(2026, 12, 27))
    assert "new_year" in active(date(2026, 12, 31))
    assert "new_year" in active(date(2027, 1, 1))
    assert "new_year" not in active(date(2027, 1, 2))


def test_sales_and_back_to_school_flip_with_the_hemisphere() -> None:
    # The last Monday of July 2026 is 27 July; of January 2026 is 26 January.
    assert "summer_sale" in active(date(2026, 7, 27))
    assert "summer_sale" in active(date(2026, 8, 9))
    assert "summer_sale" not in active(date(2026, 8, 10))
    assert "winter_sale" in active(date(2026, 1, 26))
    assert "summer_sale" in active(date(2026, 1, 26), southern=True, country="AU")
    assert "back_to_school" in active(date(2026, 8, 20))
    assert "back_to_school" not in active(date(2026, 8, 20), southern=True, country="AU")
    assert "back_to_school" in active(date(2026, 2, 1), southern=True, country="AU")


def test_countries_limit_a_season() -> None:
    weiberfastnacht = date(2026, 2, 12)
    assert "carnival" in active(weiberfastnacht, country="DE")
    assert "carnival" not in active(weiberfastnacht, country="US")
    assert "mothers_day" in active(date(2026, 5, 10), country="US")
    assert "mothers_day" not in active(date(2026, 5, 10), country="GB")


def test_an_ordinary_day_has_no_retail_season() -> None:
    assert active(date(2026, 10, 14)) == ()


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
    southern=st.booleans(),
)
def test_advent_and_christmas_hold_exactly_on_their_days(day: date, southern: bool) -> None:
    found = active(day, southern)
    assert set(found) <= set(RETAIL_SEASON_NAMES)
    assert list(found) == [name for name in RETAIL_SEASON_NAMES if name in found]
    # First Advent is the one Sunday from 27 November to 3 December.
    week = (date(day.year, 11, 27) + timedelta(days=n) for n in range(7))
    first_advent = next(d for d in week if d.isoweekday() == 7)
    assert ("advent" in found) == (first_advent <= day <= date(day.year, 12, 24))
    assert ("christmas" in found) == (day.month == 12 and 24 <= day.day <= 26)
    easter = gregorian_easter(day.year)
    assert ("easter" in found) == (easter - timedelta(days=2) <= day <= easter + timedelta(days=1))


# --- validation of a season file ---------------------------------------------------------------


def _season(**fields: Any) -> dict[str, Any]:
    """A season file with one season; a field given as None is left out."""
    season: dict[str, Any] = {"name": "test_sale", "start": "07-01", "end": "07-14"}
    season.update(fields)
    return {"seasons": [{key: value for key, value in season.items() if value is not None}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"season": []}, r"^s\.yaml: expected a mapping with only a list `seasons`"),
        (_season(name="Test Sale"), r"seasons\[0\]\.name: expected a snake_case name"),
        (_season(start="07-32"), r"seasons\[0\] \(test_sale\)\.start: '07-32' is not a day"),
        (_season(end="easter + x"), r"\(test_sale\)\.end: 'easter \+ x' is not a date rule"),
        (_season(days=3), r"\(test_sale\)\.end: give exactly one of end and days"),
        (_season(end=None, days=0), r"\(test_sale\)\.days: expected a whole number 1\.\.366"),
        (_season(end=None), r"\(test_sale\)\.end: give exactly one of end and days"),
        (_season(start=None), r"\(test_sale\)\.start: missing"),
        (_season(start=12), r"\(test_sale\)\.start: expected a date rule"),
        (_season(colour="red"), r"\(test_sale\)\.colour: unknown field"),
        (_season(countries=["XX"]), r"\(test_sale\)\.countries: 'XX' is not"),
        (_season(countries="DE"), r"\(test_sale\)\.countries: expected a list"),
        (_season(north={"start": "07-01", "end": "07-14"}), r"\(test_sale\)\.north: give either"),
        (
            _season(start="easter - 2", end="04-10"),
            r"\(test_sale\)\.end: ends before it starts in \d+ but not in \d+",
        ),
        (
            {"seasons": [{"name": "x", "north": {"start": "07-01", "until": "07-02"}}]},
            r"seasons\[0\] \(x\)\.north\.until: unknown field",
        ),
        (
            {"seasons": [{"name": "x", "south": {"end": "07-02"}}]},
            r"seasons\[0\] \(x\)\.south\.start: missing",
        ),
        ({"seasons": [{"name": "x"}]}, r"\(x\)\.start: missing, and no north or south"),
        (
            {"seasons": [_season()["seasons"][0], _season()["seasons"][0]]},
            r"seasons\[1\] \(test_sale\)\.name: given twice",
        ),
    ],
)
def test_invalid_season_files_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(RetailSeasonError, match=message):
        parse_retail_seasons(data, "s.yaml")


def test_a_season_of_one_hemisphere_only(tmp_path: Path) -> None:
    path = tmp_path / "seasons.yaml"
    path.write_text(
        "seasons:\n"
        "  - name: summer_fest\n"
        "    south: {start: 1st sat of feb, days: 2}\n"
        "  - name: harvest\n"
        "    start: 09-20\n"
        "    days: 10\n"
        "    countries: [DE]\n"
    )
    calendar = load_retail_seasons(path)
    assert calendar.names == ("summer_fest", "harvest")
    assert calendar.active(date(2026, 2, 8), True, "AU") == ("summer_fest",)
    assert calendar.active(date(2026, 2, 8), False, "DE") == ()
    assert calendar.active(date(2026, 9, 29), False, "DE") == ("harvest",)
    assert calendar.active(date(2026, 9, 30), False, "DE") == ()


def test_unreadable_season_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(RetailSeasonError, match=r"missing\.yaml: cannot read"):
        load_retail_seasons(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("seasons: [\n")
    with pytest.raises(RetailSeasonError, match=r"broken\.yaml: cannot read"):
        load_retail_seasons(broken)
