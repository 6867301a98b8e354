"""Local time of a request: its time zone, wall-clock time, weekday and daypart."""

from __future__ import annotations

import dataclasses
import functools
import threading
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from timezonefinder import TimezoneFinder

# The dayparts the API knows (enum Daypart); a deployment may use a subset.
DAYPART_NAMES = ("morning", "lunch", "afternoon", "evening", "night")
DEFAULT_DAYPARTS = "morning=5,lunch=11,afternoon=14,evening=17,night=22"
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclasses.dataclass(frozen=True)
class Dayparts:
    """Daypart start hours (local); the last daypart of the day runs on past midnight."""

    starts: tuple[tuple[int, str], ...]
    # The daypart of each hour 0..23, computed once: `at` runs on every request.
    by_hour: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_hour = []
        for hour in range(24):
            current = self.starts[-1][1]  # before the first start: still last night's daypart
            for start, name in self.starts:
                if hour < start:
                    break
                current = name
            by_hour.append(current)
        object.__setattr__(self, "by_hour", tuple(by_hour))

    def at(self, hour: int) -> str:
        """The daypart of a local hour (0..23)."""
        return self.by_hour[hour]


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


# Zones once used, held for good. ZoneInfo's own cache keeps only the last eight strongly;
# an evicted zone is read from disk again (some 90 us), which a service near several
# borders (Germany has nine neighbours) would pay on a good share of its requests.
_zones: dict[str, zoneinfo.ZoneInfo] = {}


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The ZoneInfo of a zone name checked with is_time_zone."""
    found = _zones.get(name)
    if found is None:
        # A race only loads a zone twice; is_time_zone bounds the dict by the tz database.
        found = _zones[name] = zoneinfo.ZoneInfo(name)
    return found


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


@dataclasses.dataclass(frozen=True)
class ZoneEntry:
    """A zone's row of the tz database's zone.tab: its country and principal location."""

    country: str
    latitude: float


def _degrees(text: str, width: int) -> float:
    """Parses the ISO 6709 part "+DDMM[SS]" / "+DDDMM[SS]" of zone.tab."""
    sign = -1.0 if text[0] == "-" else 1.0
    digits = text[1:]
    whole, minutes, seconds = digits[:width], digits[width : width + 2], digits[width + 2 :]
    return sign * (int(whole) + int(minutes) / 60 + (int(seconds) / 3600 if seconds else 0))


@functools.cache
def _zone_table() -> dict[str, ZoneEntry]:
    """Zone name to country and latitude, from zone.tab (one country per zone)."""
    for directory in zoneinfo.TZPATH:
        table = Path(directory) / "zone.tab"
        if table.is_file():
            entries = {}
            for line in table.read_text(encoding="utf-8").splitlines():
                fields = line.split("\t")
                if line.startswith("#") or len(fields) < 3:
                    continue
                coordinates = fields[1]
                split = max(coordinates.rfind("+"), coordinates.rfind("-"))
                entries[fields[2]] = ZoneEntry(fields[0], _degrees(coordinates[:split], 2))
            return entries
    return {}


def zone_country(name: str) -> str | None:
    """The country a zone belongs to (Europe/Berlin: DE), None for Etc/* and unknown zones."""
    entry = _zone_table().get(name)
    return entry.country if entry else None


def zone_latitude(name: str) -> float | None:
    """The latitude of a zone's principal city (Australia/Sydney: -33.9), None when unknown."""
    entry = _zone_table().get(name)
    return entry.latitude if entry else None


@functools.cache
def country_zone(country: str) -> str | None:
    """The only zone of a country with one zone (JP: Asia/Tokyo), else None."""
    zones = [name for name, entry in _zone_table().items() if entry.country == country]
    return zones[0] if len(zones) == 1 else None


class ZoneChoice(NamedTuple):
    """A request's zone and where it came from; a named tuple, as one is made per request."""

    name: str
    # Where it came from: "store", "location", "request", "country" or "default".
    source: str


def choose_zone(
    store_zone: str,
    location: tuple[float, float] | None,
    requested: str,
    default: str,
    country: str = "",
) -> ZoneChoice:
    """The request's zone: the store's, else the location's, else the requested one, else
    the country's when it has only one, else the default.

    A store or a position says where the customer really is; a device's zone
    setting may still be the one from home.
    """
    if store_zone:
        return ZoneChoice(store_zone, "store")
    if location is not None:
        found = zone_at(*location)
        if found is not None:
            return ZoneChoice(found, "location")
    if requested:
        return ZoneChoice(requested, "request")
    only = country_zone(country) if country else None
    if only is not None and is_time_zone(only):
        return ZoneChoice(only, "country")
    return ZoneChoice(default, "default")


def local_time(instant: datetime, zone_name: str) -> datetime:
    """The wall-clock time of an aware instant in a zone, with that moment's UTC offset."""
    found = _zones.get(zone_name)
    return instant.astimezone(found if found is not None else zone(zone_name))


def is_weekend(local: datetime) -> bool:
    return local.isoweekday() >= 6


def weekday_name(local: datetime) -> str:
    return WEEKDAY_NAMES[local.isoweekday() - 1]
