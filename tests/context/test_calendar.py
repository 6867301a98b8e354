"""Seasons, public holidays and retail seasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from emma.context import calendar
from emma.context.calendar import HolidayCalendar


@pytest.mark.parametrize(
    ("day", "north", "south"),
    [
        (date(2026, 1, 15), "winter", "summer"),
        (date(2026, 2, 28), "winter", "summer"),
        (date(2026, 3, 1), "spring", "autumn"),
        (date(2026, 5, 31), "spring", "autumn"),
        (date(2026, 6, 1), "summer", "winter"),
        (date(2026, 8, 31), "summer", "winter"),
        (date(2026, 9, 1), "autumn", "spring"),
        (date(2026, 11, 30), "autumn", "spring"),
        (date(2026, 12, 1), "winter", "summer"),
    ],
)
def test_meteorological_season_by_hemisphere(day: date, north: str, south: str) -> None:
    assert calendar.season(day, southern_hemisphere=False) == north
    assert calendar.season(day, southern_hemisphere=True) == south


def test_german_unity_day_is_a_holiday_everywhere_in_germany() -> None:
    holidays = HolidayCalendar()
    for region in ("BE", "BY", "HH", "NW", "SN", ""):
        holiday = holidays.on("DE", region, date(2026, 10, 3))
        assert holiday is not None, region
        assert holiday.name == "Tag der Deutschen Einheit"


def test_epiphany_is_a_holiday_in_bavaria_but_not_in_berlin() -> None:
    holidays = HolidayCalendar()
    bavaria = holidays.on("DE", "BY", date(2026, 1, 6))
    assert bavaria is not None and bavaria.name == "Heilige Drei Könige"
    assert holidays.on("DE", "BE", date(2026, 1, 6)) is None


def test_holiday_names_follow_the_configured_language() -> None:
    holiday = HolidayCalendar("en_US").on("DE", "BY", date(2026, 10, 3))
    assert holiday is not None and holiday.name == "German Unity Day"


def test_next_holiday_is_strictly_after_today_and_crosses_the_year() -> None:
    holidays = HolidayCalendar()
    upcoming = holidays.next_after("DE", "BE", date(2026, 10, 3))
    assert upcoming is not None and upcoming.day == date(2026, 12, 25)
    upcoming = holidays.next_after("DE", "BE", date(2026, 12, 27))
    assert upcoming is not None and upcoming.day == date(2027, 1, 1)
    assert upcoming.name == "Neujahr"
    # Berlin has Internationaler Frauentag (8 March), Hamburg does not.
    assert holidays.next_after("DE", "BE", date(2026, 3, 1)).day == date(2026, 3, 8)  # type: ignore[union-attr]
    assert holidays.next_after("DE", "HH", date(2026, 3, 1)).day == date(2026, 4, 3)  # type: ignore[union-attr]


def test_countries_and_regions_are_checked() -> None:
    assert calendar.is_country("DE")
    assert not calendar.is_country("XX")
    assert calendar.canonical_region("DE", "by") == "BY"
    assert calendar.canonical_region("DE", "ZZ") is None
    assert calendar.canonical_region("XX", "BY") is None


def test_advent_2026() -> None:
    # Christmas 2026 is a Friday: fourth Advent 20 December, first Advent 29 November.
    assert calendar.first_advent(2026) == date(2026, 11, 29)
    assert "advent" not in calendar.retail_seasons(date(2026, 11, 28))
    assert "advent" in calendar.retail_seasons(date(2026, 11, 29))
    assert "advent" in calendar.retail_seasons(date(2026, 12, 24))
    assert "advent" not in calendar.retail_seasons(date(2026, 12, 25))


@pytest.mark.parametrize(
    ("year", "first"),
    [(2022, date(2022, 11, 27)), (2023, date(2023, 12, 3)), (2027, date(2027, 11, 28))],
)
def test_first_advent_is_a_sunday_four_weeks_before_christmas(year: int, first: date) -> None:
    assert calendar.first_advent(year) == first
    assert first.isoweekday() == 7


def test_christmas_and_easter_windows() -> None:
    assert calendar.retail_seasons(date(2026, 12, 24)) == ("advent", "christmas")
    assert calendar.retail_seasons(date(2026, 12, 26)) == ("christmas",)
    assert "christmas" not in calendar.retail_seasons(date(2026, 12, 27))
    # Easter Sunday 2026 is 5 April: Good Friday 3 April to Easter Monday 6 April.
    assert calendar.easter_sunday(2026) == date(2026, 4, 5)
    easter_days = [d for d in range(1, 9) if "easter" in calendar.retail_seasons(date(2026, 4, d))]
    assert easter_days == [3, 4, 5, 6]


def test_black_friday_to_cyber_monday() -> None:
    assert calendar.black_friday(2026) == date(2026, 11, 27)
    assert calendar.black_friday(2025) == date(2025, 11, 28)
    days = [
        d.day
        for d in (date(2026, 11, 26) + timedelta(days=n) for n in range(6))
        if "black_friday" in calendar.retail_seasons(d)
    ]
    assert days == [27, 28, 29, 30]


def test_sales_and_back_to_school_flip_with_the_hemisphere() -> None:
    # The last Monday of July 2026 is 27 July; of January 2026 is 26 January.
    assert "summer_sale" in calendar.retail_seasons(date(2026, 7, 27))
    assert "summer_sale" in calendar.retail_seasons(date(2026, 8, 9))
    assert "summer_sale" not in calendar.retail_seasons(date(2026, 8, 10))
    assert "winter_sale" in calendar.retail_seasons(date(2026, 1, 26))
    assert "summer_sale" in calendar.retail_seasons(date(2026, 1, 26), southern_hemisphere=True)
    assert "back_to_school" in calendar.retail_seasons(date(2026, 8, 20))
    assert "back_to_school" not in calendar.retail_seasons(date(2026, 8, 20), True)
    assert "back_to_school" in calendar.retail_seasons(date(2026, 2, 1), True)


def test_an_ordinary_day_has_no_retail_season() -> None:
    assert calendar.retail_seasons(date(2026, 10, 14)) == ()
