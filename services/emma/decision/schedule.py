"""Quiet hours: when an intrusive send inside them may go out instead, or that it may not."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from emma.decision.domain import QuietHours


def _zone(local_now: datetime, time_zone: str) -> datetime:
    """`local_now` in its IANA zone when known, so the hours after it cross DST correctly."""
    if time_zone:
        try:
            return local_now.astimezone(zoneinfo.ZoneInfo(time_zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return local_now


def _first_free_minute(start: datetime, quiet: QuietHours) -> datetime | None:
    """The first local time in the hour starting at `start` that is outside quiet hours."""
    for minute in range(60):
        candidate = start + timedelta(minutes=minute)
        if not quiet.contains(candidate):
            return candidate
    return None


def quiet_send_time(
    local_now: datetime,
    quiet: QuietHours,
    active_hours: tuple[float, ...],
    horizon: timedelta,
    time_zone: str = "",
) -> datetime | None:
    """Where a send inside quiet hours goes: the customer's most active hour after them.

    Looks at every local hour that starts within the horizon, skips those entirely in
    quiet hours, and returns (in UTC) the first minute outside quiet hours of the hour
    with the highest activity; ties go to the earliest. None when no hour within the
    horizon has any recorded activity: sending at a random time would not respect the
    customer, so the send is dropped.
    """
    if len(active_hours) != 24:
        return None
    now = _zone(local_now, time_zone)
    # Hour starts are stepped in UTC: local wall-clock hours repeat or vanish at DST changes.
    hour_start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    best: tuple[float, datetime] | None = None
    step = timedelta(hours=1)
    start = hour_start + step
    while start - now <= horizon:
        local = start.astimezone(now.tzinfo)
        activity = active_hours[local.hour]
        if activity > 0 and (best is None or activity > best[0]):
            free = _first_free_minute(local, quiet)
            if free is not None:
                best = (activity, free)
        start += step
    return None if best is None else best[1].astimezone(UTC)
