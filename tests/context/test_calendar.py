"""Meteorological seasons and public holidays by country, region and category."""

from __future__ import annotations

from datetime import date

import pytest

from emma.context import calendar, countries
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
    assert countries.is_country("DE")
    assert not countries.is_country("XX")
    assert countries.canonical_region("DE", "by") == "BY"
    assert countries.canonical_region("DE", "ZZ") is None
    assert countries.canonical_region("XX", "BY") is None
    assert "catholic" in countries.holiday_categories("DE")


def test_holiday_categories_always_include_public_and_drop_unknown_ones() -> None:
    assert calendar.holiday_categories("DE", ["catholic"]) == ("catholic", "public")
    assert calendar.holiday_categories("DE", []) == ("public",)
    assert calendar.holiday_categories("US", ["catholic"]) == ("public",)


def test_next_holiday_in_a_country_across_new_year() -> None:
    holidays = HolidayCalendar()
    # New South Wales: Boxing Day 2026 is a Saturday, observed on Monday 28 December.
    upcoming = holidays.next_after("AU", "NSW", date(2026, 12, 26))
    assert upcoming is not None and upcoming.day == date(2026, 12, 28)
    upcoming = holidays.next_after("AU", "NSW", date(2026, 12, 28))
    assert upcoming is not None and upcoming.day == date(2027, 1, 1)
    assert holidays.next_after("DE", "", date(2026, 12, 31)).day == date(2027, 1, 1)  # type: ignore[union-attr]


def test_a_year_without_holiday_data_is_logged_not_warned(
    caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    # The holidays package has India's lunar holidays for 2001-2035 only.
    with caplog.at_level("WARNING", logger="emma.context.calendar"):
        later = HolidayCalendar().of_year("IN", "", 2061)
    assert isinstance(later, tuple)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    (record,) = [r for r in caplog.records if r.message == "holiday calendar incomplete"]
    assert (record.country, record.year) == ("IN", 2061)  # type: ignore[attr-defined]
    assert "2001" in record.detail  # type: ignore[attr-defined]
