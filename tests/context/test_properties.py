"""Property tests of the resolver over random places and instants: daylight saving changes,
the date line, the southern hemisphere and New Year."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from emma.context import clock
from emma.context.calendar import HolidayCalendar
from emma.context.config import DEFAULT_STORES_PATH
from emma.context.features import FEATURE_NAME, context_features
from emma.context.resolver import ContextRequest, ContextResolver, ResolvedContext
from emma.context.stores import load_stores

RESOLVER = ContextResolver(
    load_stores(DEFAULT_STORES_PATH),
    dayparts=clock.parse_dayparts("morning=5,lunch=11,afternoon=14,evening=17,night=22"),
    default_time_zone="Europe/Berlin",
    default_country="DE",
)
HOLIDAYS = HolidayCalendar()
BERLIN = ZoneInfo("Europe/Berlin")
KIRITIMATI = (1.87, -157.40)  # Line Islands, UTC+14 since 1995
PAGO_PAGO = (-14.28, -170.70)  # American Samoa, UTC-11
SYDNEY = (-33.87, 151.21)

# Written out independently of the code under test.
NORTHERN_SEASON = {1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
                   6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn",
                   11: "autumn", 12: "winter"}  # fmt: skip
OPPOSITE = {"winter": "summer", "summer": "winter", "spring": "autumn", "autumn": "spring"}


def daypart_of(hour: int) -> str:
    if 5 <= hour < 11:
        return "morning"
    if 11 <= hour < 14:
        return "lunch"
    if 14 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


def last_sunday(year: int, month: int) -> date:
    day = date(year, month, 31)
    return day - timedelta(days=day.isoweekday() % 7)


def check_clock_and_calendar(context: ResolvedContext, instant: datetime) -> None:
    """What must hold for every resolved context."""
    local = context.local_time
    expected = instant.astimezone(ZoneInfo(context.time_zone))
    # Timestamps, not ==: an aware time in the repeated hour of a DST change (fold=1)
    # never compares equal to a time in another zone (PEP 495).
    assert local.timestamp() == instant.timestamp()
    assert local.utcoffset() == expected.utcoffset()
    assert local.replace(tzinfo=None) == expected.replace(tzinfo=None)
    assert context.daypart == daypart_of(local.hour)
    assert context.weekday == local.isoweekday()
    assert context.weekend == (local.isoweekday() >= 6)
    north = NORTHERN_SEASON[local.month]
    assert context.season == (OPPOSITE[north] if context.southern_hemisphere else north)
    today = local.date()
    if context.next_holiday is not None:
        assert context.next_holiday.day > today
        assert context.days_to_next_holiday == (context.next_holiday.day - today).days >= 1
    else:
        assert context.days_to_next_holiday == 0
    if context.holiday is not None:
        assert context.holiday.day == today
    assert all(FEATURE_NAME.match(feature.name) for feature in context_features(context))


# The years requests may fall in (1900..2100), a day inside so every zone is too.
instants = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2100, 12, 30), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(
    instant=instants,
    latitude=st.floats(min_value=-90, max_value=90),
    longitude=st.floats(min_value=-180, max_value=180),
)
def test_any_place_and_instant(instant: datetime, latitude: float, longitude: float) -> None:
    context = RESOLVER.resolve(ContextRequest(instant=instant, location=(latitude, longitude)))
    check_clock_and_calendar(context, instant)
    assert context.store is not None and context.store_distance_m is not None
    if context.in_store:  # at the store: its zone
        assert context.time_zone == context.store.time_zone
    else:
        assert context.time_zone == (clock.zone_at(latitude, longitude) or "Europe/Berlin")
    assert context.southern_hemisphere == (latitude < 0)
    assert 0 <= context.store_distance_m <= 20_040_000  # half the earth's circumference
    assert context.in_store == (context.store_distance_m <= context.store.geofence_m)


@settings(max_examples=200, deadline=None)
@given(
    year=st.integers(min_value=1996, max_value=2100),
    month=st.sampled_from([3, 10]),
    seconds=st.integers(min_value=-3 * 3600, max_value=3 * 3600),
    store=st.sampled_from(["berlin-mitte", "leipzig-zentrum", "koeln-dom"]),
)
def test_berlin_daylight_saving_changes(year: int, month: int, seconds: int, store: str) -> None:
    # The EU switches at 01:00 UTC on the last Sunday of March and of October.
    switch = datetime.combine(last_sunday(year, month), datetime.min.time(), UTC) + timedelta(
        hours=1
    )
    instant = switch + timedelta(seconds=seconds)
    context = RESOLVER.resolve(ContextRequest(instant=instant, store_id=store))
    check_clock_and_calendar(context, instant)
    summer_time = (instant >= switch) == (month == 3)
    assert context.local_time.utcoffset() == timedelta(hours=2 if summer_time else 1)
    assert context.local_time.isoweekday() == 7 or seconds < -3600 or seconds >= 22 * 3600
    assert context.store is not None
    if context.store_open:
        assert context.store.within_hours(context.local_time) and context.holiday is None
    elif context.holiday is None:
        assert not context.store.within_hours(context.local_time)


@settings(max_examples=200, deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(1996, 1, 1), max_value=datetime(2100, 12, 30), timezones=st.just(UTC)
    )
)
def test_either_side_of_the_date_line(instant: datetime) -> None:
    east = RESOLVER.resolve(ContextRequest(instant=instant, location=KIRITIMATI))
    west = RESOLVER.resolve(ContextRequest(instant=instant, location=PAGO_PAGO))
    assert (east.time_zone, west.time_zone) == ("Pacific/Kiritimati", "Pacific/Pago_Pago")
    check_clock_and_calendar(east, instant)
    check_clock_and_calendar(west, instant)
    # The same instant, 25 hours apart on the wall clock: one or two dates apart.
    wall = east.local_time.replace(tzinfo=None) - west.local_time.replace(tzinfo=None)
    assert wall == timedelta(hours=25)
    days_apart = (east.local_time.date() - west.local_time.date()).days
    assert days_apart in (1, 2)
    assert (east.weekday - west.weekday) % 7 == days_apart
    assert not east.southern_hemisphere and west.southern_hemisphere


@settings(max_examples=200, deadline=None)
@given(instant=instants)
def test_southern_hemisphere_seasons_are_opposite(instant: datetime) -> None:
    sydney = RESOLVER.resolve(ContextRequest(instant=instant, location=SYDNEY))
    check_clock_and_calendar(sydney, instant)
    assert sydney.time_zone == "Australia/Sydney" and sydney.country == "AU"
    assert sydney.southern_hemisphere
    assert sydney.season == OPPOSITE[NORTHERN_SEASON[sydney.local_time.month]]
    # A request with only the zone is placed by the zone's city: south as well.
    by_zone = RESOLVER.resolve(ContextRequest(instant=instant, time_zone="Australia/Sydney"))
    assert by_zone.southern_hemisphere and by_zone.season == sydney.season


@settings(max_examples=200, deadline=None)
@given(
    year=st.integers(min_value=1992, max_value=2100),  # German holidays exist since 1991
    seconds=st.integers(min_value=-2 * 86400, max_value=2 * 86400),
    store=st.sampled_from(["berlin-mitte", "muenchen-marienplatz", "hamburg-altona"]),
)
def test_new_year(year: int, seconds: int, store: str) -> None:
    instant = datetime(year, 1, 1, tzinfo=BERLIN) + timedelta(seconds=seconds)
    context = RESOLVER.resolve(ContextRequest(instant=instant, store_id=store))
    check_clock_and_calendar(context, instant)
    today = context.local_time.date()
    if (today.month, today.day) == (12, 31):
        assert context.next_holiday is not None
        assert context.next_holiday.day == date(today.year + 1, 1, 1)
        assert context.days_to_next_holiday == 1
        assert "new_year" in context.retail_seasons
    if (today.month, today.day) == (1, 1):
        assert context.holiday is not None and context.holiday.name == "Neujahr"
        assert context.next_holiday is not None and context.next_holiday.day.year == today.year


@settings(max_examples=150, deadline=None)
@given(
    day=st.dates(min_value=date(1991, 1, 1), max_value=date(2099, 12, 31)),
    region=st.sampled_from(["BE", "BY", "SN", "TH", "HH", ""]),
)
def test_days_to_the_next_holiday_skip_no_holiday(day: date, region: str) -> None:
    instant = datetime.combine(day, datetime.min.time(), BERLIN) + timedelta(hours=12)
    context = RESOLVER.resolve(ContextRequest(instant=instant, country="DE", region=region))
    assert context.next_holiday is not None  # Germany has a holiday within any two years
    between = (day + timedelta(days=n) for n in range(1, context.days_to_next_holiday))
    assert all(HOLIDAYS.on("DE", region, other) is None for other in between)
    assert HOLIDAYS.on("DE", region, context.next_holiday.day) == context.next_holiday
