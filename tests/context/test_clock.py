"""Local time, zones and dayparts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emma.context import clock

DAYPARTS = clock.parse_dayparts("morning=5,lunch=11,afternoon=14,evening=17,night=22")


@pytest.mark.parametrize(
    ("hour", "daypart"),
    [
        (0, "night"),
        (4, "night"),
        (5, "morning"),
        (10, "morning"),
        (11, "lunch"),
        (13, "lunch"),
        (14, "afternoon"),
        (16, "afternoon"),
        (17, "evening"),
        (21, "evening"),
        (22, "night"),
        (23, "night"),
    ],
)
def test_daypart_boundaries(hour: int, daypart: str) -> None:
    assert DAYPARTS.at(hour) == daypart


def test_dayparts_are_configurable_and_order_free() -> None:
    dayparts = clock.parse_dayparts("night=23, morning=6, evening=18")
    assert [dayparts.at(h) for h in (0, 5, 6, 17, 18, 22, 23)] == [
        "night", "night", "morning", "morning", "evening", "evening", "night",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("morning=5,brunch=10", "unknown daypart"),
        ("morning=5,morning=6", "given twice"),
        ("morning=24", "0..23"),
        ("morning=five", "integer"),
        ("morning", "name=hour"),
        ("morning=5,lunch=5", "same hour"),
    ],
)
def test_bad_dayparts_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        clock.parse_dayparts(text)


def test_time_zone_names_are_checked_against_the_tz_database() -> None:
    assert clock.is_time_zone("Europe/Berlin")
    assert clock.is_time_zone("UTC")
    assert not clock.is_time_zone("Europe/Atlantis")
    assert not clock.is_time_zone("../etc/passwd")
    assert not clock.is_time_zone("")


def test_zone_at_coordinates() -> None:
    assert clock.zone_at(52.52, 13.40) == "Europe/Berlin"
    assert clock.zone_at(-33.87, 151.21) == "Australia/Sydney"
    assert clock.zone_at(40.71, -74.01) == "America/New_York"


def test_zone_country_from_the_tz_database() -> None:
    assert clock.zone_country("Europe/Berlin") == "DE"
    assert clock.zone_country("Australia/Sydney") == "AU"
    assert clock.zone_country("Etc/GMT+2") is None


def test_zone_latitude_and_single_zone_countries_from_the_tz_database() -> None:
    assert clock.zone_latitude("Europe/Berlin") == pytest.approx(52.5)
    assert clock.zone_latitude("Australia/Sydney") == pytest.approx(-33.87, abs=0.01)
    assert clock.zone_latitude("Etc/UTC") is None
    assert clock.country_zone("JP") == "Asia/Tokyo"
    assert clock.country_zone("AU") is None  # several zones
    assert clock.country_zone("XX") is None


def test_zone_precedence_store_then_location_then_request_then_country_then_default() -> None:
    sydney = (-33.87, 151.21)
    choose = clock.choose_zone
    assert choose("Europe/Berlin", sydney, "Asia/Tokyo", "UTC", "JP") == clock.ZoneChoice(
        "Europe/Berlin", "store"
    )
    assert choose("", sydney, "Asia/Tokyo", "UTC", "JP").name == "Australia/Sydney"
    assert choose("", None, "Asia/Tokyo", "UTC", "AU") == clock.ZoneChoice("Asia/Tokyo", "request")
    assert choose("", None, "", "UTC", "JP") == clock.ZoneChoice("Asia/Tokyo", "country")
    assert choose("", None, "", "UTC", "AU") == clock.ZoneChoice("UTC", "default")
    assert choose("", None, "", "UTC") == clock.ZoneChoice("UTC", "default")


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        # 2026-03-29: clocks in Berlin jump from 02:00 CET to 03:00 CEST at 01:00 UTC.
        (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), "2026-03-29T01:59:59+01:00"),
        (datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), "2026-03-29T03:00:00+02:00"),
        (datetime(2026, 3, 29, 12, 0, 0, tzinfo=UTC), "2026-03-29T14:00:00+02:00"),
        (datetime(2026, 3, 28, 12, 0, 0, tzinfo=UTC), "2026-03-28T13:00:00+01:00"),
        # 2026-10-25: back from 03:00 CEST to 02:00 CET at 01:00 UTC; 02:30 happens twice.
        (datetime(2026, 10, 25, 0, 30, 0, tzinfo=UTC), "2026-10-25T02:30:00+02:00"),
        (datetime(2026, 10, 25, 1, 30, 0, tzinfo=UTC), "2026-10-25T02:30:00+01:00"),
    ],
)
def test_local_time_across_dst(utc: datetime, local: str) -> None:
    assert clock.local_time(utc, "Europe/Berlin").isoformat() == local


def test_daypart_follows_the_local_clock_across_dst() -> None:
    # 04:30 UTC is 05:30 CET (morning) in winter but 06:30 CEST after the switch, both morning;
    # 03:30 UTC is 04:30 CET (night) before and 05:30 CEST (morning) after.
    before = clock.local_time(datetime(2026, 3, 28, 3, 30, tzinfo=UTC), "Europe/Berlin")
    after = clock.local_time(datetime(2026, 3, 30, 3, 30, tzinfo=UTC), "Europe/Berlin")
    assert DAYPARTS.at(before.hour) == "night"
    assert DAYPARTS.at(after.hour) == "morning"


def test_weekday_and_weekend() -> None:
    saturday = clock.local_time(datetime(2026, 10, 3, 10, tzinfo=UTC), "Europe/Berlin")
    monday = clock.local_time(datetime(2026, 10, 5, 10, tzinfo=UTC), "Europe/Berlin")
    assert (saturday.isoweekday(), clock.is_weekend(saturday)) == (6, True)
    assert clock.weekday_name(saturday) == "saturday"
    assert (monday.isoweekday(), clock.is_weekend(monday)) == (1, False)


def test_weekday_is_the_local_one() -> None:
    # Sunday 23:30 UTC is already Monday morning in Sydney.
    instant = datetime(2026, 7, 5, 23, 30, tzinfo=UTC)
    assert clock.local_time(instant, "UTC").isoweekday() == 7
    assert clock.local_time(instant, "Australia/Sydney").isoweekday() == 1
