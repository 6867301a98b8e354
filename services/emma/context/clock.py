"""Local time of a request: its time zone, wall-clock time, weekday and daypart."""

from __future__ import annotations

import dataclasses
import functools
import threading
import zoneinfo
from datetime import datetime
from pathlib import Path

from timezonefinder import TimezoneFinder

# The dayparts the API knows (enum Daypart); a deployment may use a subset.
DAYPART_NAMES = ("morning", "lunch", "afternoon", "evening", "night")
DEFAULT_DAYPARTS = "morning=5,lunch=11,afternoon=14,evening=17,night=22"
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclasses.dataclass(frozen=True)
class Dayparts:
    """Daypart start hours (local); the last daypart of the day runs on past midnight."""

    starts: tuple[tuple[int, str], ...]

    def at(self, hour: int) -> str:
        """The daypart of a local hour (0..23)."""
        current = self.starts[-1][1]  # before the first start: still last night's daypart
        for start, name in self.starts:
            if hour < start:
                break
            current = name
        return current


def parse_dayparts(text: str) -> Dayparts:
    """Parses "morning=5,lunch=11,..." into Dayparts; raises ValueError saying what is wrong."""
    starts: dict[str, int] = {}
    for part in text.split(","):
        name, sep, raw_hour = part.strip().partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"{part.strip()!r}: expected name=hour")
        if name not in DAYPART_NAMES:
            raise ValueError(f"{name!r}: unknown daypart, expected one of {list(DAYPART_NAMES)}")
        if name in starts:
            raise ValueError(f"{name!r}: given twice")
        try:
            hour = int(raw_hour)
        except ValueError:
            raise ValueError(f"{name}={raw_hour.strip()!r}: the hour must be an integer") from None
        if not 0 <= hour <= 23:
            raise ValueError(f"{name}={hour}: the hour must be 0..23")
        starts[name] = hour
    hours = sorted(starts.values())
    if len(set(hours)) != len(hours):
        raise ValueError("two dayparts start at the same hour")
    return Dayparts(tuple(sorted((hour, name) for name, hour in starts.items())))


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA zone of this machine's tz database."""
    # Membership first: ZoneInfo() would also open arbitrary files below the tz path.
    return name in _zone_names()


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The ZoneInfo of a zone name checked with is_time_zone (ZoneInfo caches instances)."""
    return zoneinfo.ZoneInfo(name)


_finder: TimezoneFinder | None = None
_finder_lock = threading.Lock()


def zone_finder() -> TimezoneFinder:
    """The process-wide TimezoneFinder; built on first use, as loading it takes a while."""
    global _finder
    if _finder is None:
        with _finder_lock:
            if _finder is None:
                _finder = TimezoneFinder()
    return _finder


def zone_at(latitude: float, longitude: float) -> str | None:
    """The IANA zone at a point (Etc/GMT±N at sea), or None when unknown here."""
    name = zone_finder().timezone_at(lng=longitude, lat=latitude)
    return name if isinstance(name, str) and is_time_zone(name) else None


@functools.cache
def _zone_countries() -> dict[str, str]:
    """Zone name to ISO country code, from the tz database's zone.tab (one country per zone)."""
    for directory in zoneinfo.TZPATH:
        table = Path(directory) / "zone.tab"
        if table.is_file():
            countries = {}
            for line in table.read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#"):
                    fields = line.split("\t")
                    if len(fields) >= 3:
                        countries[fields[2]] = fields[0]
            return countries
    return {}


def zone_country(name: str) -> str | None:
    """The country a zone belongs to (Europe/Berlin: DE), None for Etc/* and unknown zones."""
    return _zone_countries().get(name)


def choose_zone(
    store_zone: str,
    location: tuple[float, float] | None,
    requested: str,
    default: str,
) -> str:
    """The request's zone: the store's, else the location's, else the requested, else default.

    A store or a position says where the customer really is; a device's zone
    setting may still be the one from home.
    """
    if store_zone:
        return store_zone
    if location is not None:
        found = zone_at(*location)
        if found is not None:
            return found
    return requested or default


def local_time(instant: datetime, zone_name: str) -> datetime:
    """The wall-clock time of an aware instant in a zone, with that moment's UTC offset."""
    return instant.astimezone(zone(zone_name))


def is_weekend(local: datetime) -> bool:
    return local.isoweekday() >= 6


def weekday_name(local: datetime) -> str:
    return WEEKDAY_NAMES[local.isoweekday() - 1]
