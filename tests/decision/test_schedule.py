"""Quiet hours: the window itself, and where a send inside it goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from emma.decision.domain import QuietHours
from emma.decision.schedule import quiet_send_time

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietHours(22 * 60, 7 * 60)


def hours(**activity: float) -> tuple[float, ...]:
    return tuple(activity.get(f"h{hour}", 0.0) for hour in range(24))


@pytest.mark.parametrize(
    ("quiet", "hhmm", "inside"),
    [
        (NIGHT, "21:59", False),
        (NIGHT, "22:00", True),
        (NIGHT, "03:00", True),
        (NIGHT, "06:59", True),
        (NIGHT, "07:00", False),
        (QuietHours(13 * 60, 15 * 60), "14:00", True),
        (QuietHours(13 * 60, 15 * 60), "15:00", False),
        (QuietHours(8 * 60, 8 * 60), "08:00", False),
    ],
)
def test_quiet_hours_may_wrap_midnight(quiet: QuietHours, hhmm: str, inside: bool) -> None:
    hour, minute = map(int, hhmm.split(":"))
    assert quiet.contains(datetime(2026, 6, 15, hour, minute, tzinfo=BERLIN)) is inside


def test_the_most_active_hour_after_quiet_hours_wins_ties_go_earliest() -> None:
    now = datetime(2026, 6, 15, 23, 30, tzinfo=BERLIN)
    activity = hours(h8=2.0, h12=3.0, h19=3.0, h23=9.0)
    send = quiet_send_time(now, NIGHT, activity, timedelta(hours=24), "Europe/Berlin")
    # 23:00 is quiet; 12:00 and 19:00 tie: the earlier one, in UTC (summer time: -2 h).
    assert send == datetime(2026, 6, 16, 10, 0, tzinfo=UTC)


def test_an_hour_partly_quiet_starts_when_quiet_hours_end() -> None:
    now = datetime(2026, 6, 15, 5, 0, tzinfo=BERLIN)
    quiet = QuietHours(22 * 60, 6 * 60 + 30)
    send = quiet_send_time(now, quiet, hours(h6=5.0, h9=1.0), timedelta(hours=24), "Europe/Berlin")
    assert send == datetime(2026, 6, 15, 4, 30, tzinfo=UTC)  # 06:30 local


def test_nothing_active_within_the_horizon_drops_the_send() -> None:
    now = datetime(2026, 6, 15, 23, 30, tzinfo=BERLIN)
    assert quiet_send_time(now, NIGHT, hours(), timedelta(hours=24)) is None
    assert quiet_send_time(now, NIGHT, (), timedelta(hours=24)) is None
    # 18:00 is 18.5 hours away.
    assert quiet_send_time(now, NIGHT, hours(h18=1.0), timedelta(hours=12)) is None
    assert quiet_send_time(now, NIGHT, hours(h18=1.0), timedelta(hours=19)) is not None


def test_hours_are_local_across_a_daylight_saving_change() -> None:
    # The night clocks go back in Berlin (25 October 2026, 03:00 -> 02:00).
    now = datetime(2026, 10, 24, 23, 0, tzinfo=BERLIN)
    send = quiet_send_time(now, NIGHT, hours(h9=1.0), timedelta(hours=24), "Europe/Berlin")
    assert send == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert send is not None and send.astimezone(BERLIN).hour == 9
