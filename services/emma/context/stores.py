"""The store registry: stores loaded from a YAML file, lookup by id and nearest-store search."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from emma.context import calendar, clock, countries
from emma.context.datafiles import DataFileError, read_data
from emma.context.nearest import NearestIndex

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
# Attribute keys become features "store_<key>"; these would clash with built-in features.
_RESERVED_ATTRIBUTES = frozenset({"id", "open"})
_FIELDS = frozenset(
    {
        "id", "name", "latitude", "longitude", "country", "region", "time_zone",
        "geofence_m", "opening_hours", "attributes", "open_on_public_holidays",
        "holiday_categories",
    }
)  # fmt: skip
_DAY = 24 * 60


class StoreRegistryError(ValueError):
    """The store file is malformed; the message names the file, the store and the field."""


@dataclasses.dataclass(frozen=True)
class OpeningHours:
    """Open on ISO `weekday` from `open_minute` to `close_minute` after local midnight.

    A close_minute past 1440 closes the next day: 22:00-06:00 is 1320 to 1800.
    """

    weekday: int
    open_minute: int
    close_minute: int


# Compared and hashed by identity: a registry entry is its own identity, and the wire-format
# cache (emma.context.convert) keys on it.
@dataclasses.dataclass(frozen=True, eq=False)
class Store:
    store_id: str
    name: str
    latitude: float
    longitude: float
    country: str
    region: str
    time_zone: str
    geofence_m: float
    opening_hours: tuple[OpeningHours, ...]
    attributes: Mapping[str, str]
    # German shops close on public holidays (Ladenschlussgesetz), so that is the default.
    open_on_public_holidays: bool = False
    # Holiday categories of the holidays package that close this store, always with
    # "public"; e.g. ("catholic", "public") where Mariä Himmelfahrt holds (most of Bavaria).
    holiday_categories: tuple[str, ...] = calendar.PUBLIC_ONLY

    def opening_day(self, local: datetime) -> date | None:
        """The day whose opening hours cover a wall-clock time in the store's zone, if any.

        Past midnight in an overnight range that is the day before: Saturday 22:00-06:00
        covers Sunday 03:00, and whether it is a holiday is decided by the Saturday.
        """
        minute = local.hour * 60 + local.minute
        weekday = local.isoweekday()
        yesterday = weekday - 1 or 7
        for hours in self.opening_hours:
            if hours.weekday == weekday and hours.open_minute <= minute < hours.close_minute:
                return local.date()
            if hours.weekday == yesterday and minute + _DAY < hours.close_minute:
                return local.date() - timedelta(days=1)
        return None

    def within_hours(self, local: datetime) -> bool:
        """Whether the opening hours cover a wall-clock time in the store's zone."""
        return self.opening_day(local) is not None


@dataclasses.dataclass(frozen=True)
class NearbyStore:
    store: Store
    distance_m: float


class StoreRegistry:
    """An immutable set of stores with vectorised nearest-store search."""

    def __init__(self, stores: Sequence[Store]) -> None:
        self._stores = tuple(stores)
        self._by_id = {store.store_id: store for store in self._stores}
        if len(self._by_id) != len(self._stores):
            raise ValueError("store ids must be unique")
        self._index = NearestIndex(
            np.array([s.latitude for s in self._stores], dtype=np.float64),
            np.array([s.longitude for s in self._stores], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self._stores)

    def __iter__(self) -> Iterator[Store]:
        return iter(self._stores)

    def get(self, store_id: str) -> Store | None:
        return self._by_id.get(store_id)

    def nearest_one(self, latitude: float, longitude: float) -> tuple[Store, float] | None:
        """The nearest store and its distance in metres; None for an empty registry."""
        found = self._index.query(latitude, longitude, 1)
        if not found:
            return None
        index, distance = found[0]
        return self._stores[index], distance

    def nearest(
        self, latitude: float, longitude: float, limit: int = 1, max_distance_m: float = 0.0
    ) -> list[NearbyStore]:
        """Up to `limit` stores by distance, only those within `max_distance_m` unless it is 0."""
        found = [
            NearbyStore(self._stores[index], distance)
            for index, distance in self._index.query(latitude, longitude, limit)
        ]
        if max_distance_m > 0:
            found = [near for near in found if near.distance_m <= max_distance_m]
        return found


# --- loading ---------------------------------------------------------------------------------


def load_stores(path: Path) -> StoreRegistry:
    """Reads and validates a store file; raises StoreRegistryError naming file, store, field."""
    try:
        data = read_data(path)
    except (OSError, DataFileError) as error:
        raise StoreRegistryError(f"{path}: cannot read the store file: {error}") from None
    return parse_stores(data, str(path))


def parse_stores(data: Any, source: str) -> StoreRegistry:
    """Validates the parsed YAML of a store file; `source` names it in errors."""
    if not isinstance(data, dict) or not isinstance(data.get("stores"), list):
        raise StoreRegistryError(f"{source}: expected a mapping with a list `stores`")
    stores: list[Store] = []
    seen: set[str] = set()
    # Stores of a chain share their hours: each distinct week is checked once.
    weeks: dict[Any, tuple[OpeningHours, ...]] = {}
    for index, entry in enumerate(data["stores"]):
        store = _parse_store(entry, f"{source}: stores[{index}]", weeks)
        if store.store_id in seen:
            raise StoreRegistryError(
                f"{source}: stores[{index}] ({store.store_id}).id: duplicate store id"
            )
        seen.add(store.store_id)
        stores.append(store)
    return StoreRegistry(stores)


def _parse_store(entry: Any, where: str, weeks: dict[Any, tuple[OpeningHours, ...]]) -> Store:
    if not isinstance(entry, dict):
        raise StoreRegistryError(f"{where}: expected a mapping")
    store_id = entry.get("id")
    if not isinstance(store_id, str) or not _ID.match(store_id):
        raise StoreRegistryError(f"{where}.id: expected a lowercase id like 'berlin-mitte'")
    where = f"{where} ({store_id})"

    def fail(field: str, problem: str) -> StoreRegistryError:
        return StoreRegistryError(f"{where}.{field}: {problem}")

    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise fail(unknown[0], f"unknown field, expected one of {sorted(_FIELDS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "expected a non-empty string")
    latitude = _number(entry.get("latitude"), -90, 90, fail, "latitude")
    longitude = _number(entry.get("longitude"), -180, 180, fail, "longitude")
    country = entry.get("country")
    if not isinstance(country, str) or not countries.is_country(country):
        raise fail("country", f"{country!r} is not an ISO 3166-1 alpha-2 code with holidays")
    raw_region = entry.get("region", "")
    if not isinstance(raw_region, str):
        raise fail("region", "expected a string")
    region = countries.canonical_region(country, raw_region) if raw_region else ""
    if region is None:
        raise fail("region", f"{raw_region!r} is not a subdivision of {country}")
    time_zone = entry.get("time_zone")
    if not isinstance(time_zone, str) or not clock.is_time_zone(time_zone):
        raise fail("time_zone", f"{time_zone!r} is not an IANA time zone")
    geofence_m = _number(entry.get("geofence_m"), 0, 100_000, fail, "geofence_m")
    open_on_holidays = entry.get("open_on_public_holidays", False)
    if not isinstance(open_on_holidays, bool):
        raise fail("open_on_public_holidays", "expected true or false")
    categories = entry.get("holiday_categories", [countries.PUBLIC])
    known = countries.holiday_categories(country)
    if not isinstance(categories, list) or not all(c in known for c in categories):
        raise fail("holiday_categories", f"expected a list of {sorted(known)}")
    return Store(
        store_id=store_id,
        name=name.strip(),
        latitude=latitude,
        longitude=longitude,
        country=country,
        region=region,
        time_zone=time_zone,
        geofence_m=geofence_m,
        opening_hours=_shared_opening_hours(entry.get("opening_hours", {}), fail, weeks),
        attributes=_attributes(entry.get("attributes", {}), fail),
        open_on_public_holidays=open_on_holidays,
        holiday_categories=calendar.holiday_categories(country, categories),
    )


def _number(value: Any, low: float, high: float, fail: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(field, "expected a number")
    if not (math.isfinite(value) and low <= value <= high):
        raise fail(field, f"{value} is not in [{low}, {high}]")
    return float(value)


def _week_key(value: Any) -> Any:
    """A hashable copy of an opening_hours mapping, or None when it has none."""
    if not isinstance(value, dict):
        return None
    key = tuple(
        (day, tuple(ranges) if isinstance(ranges, list) else ranges)
        for day, ranges in value.items()
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _shared_opening_hours(
    value: Any, fail: Any, weeks: dict[Any, tuple[OpeningHours, ...]]
) -> tuple[OpeningHours, ...]:
    """_opening_hours, once per distinct week; only valid weeks are kept, so an invalid
    one fails for every store that has it, naming that store."""
    key = _week_key(value)
    if key is None:
        return _opening_hours(value, fail)
    found = weeks.get(key)
    if found is None:
        found = weeks[key] = _opening_hours(value, fail)
    return found


def _opening_hours(value: Any, fail: Any) -> tuple[OpeningHours, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise fail("opening_hours", "expected a mapping of mon..sun to time ranges")
    hours: list[OpeningHours] = []
    for key, ranges in value.items():
        field = f"opening_hours.{key}"
        if key not in WEEKDAY_KEYS:
            raise fail(field, f"unknown weekday, expected one of {list(WEEKDAY_KEYS)}")
        if ranges in (None, "closed"):
            continue
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, list):
            raise fail(field, 'expected a list of "HH:MM-HH:MM" ranges or "closed"')
        day: list[OpeningHours] = []
        for text in ranges:
            match = _RANGE.match(text) if isinstance(text, str) else None
            if match is None:
                raise fail(field, f'{text!r} is not a "HH:MM-HH:MM" range')
            open_h, open_m, close_h, close_m = (int(g) for g in match.groups())
            start, end = open_h * 60 + open_m, close_h * 60 + close_m
            if open_h > 23 or close_h > 24 or open_m > 59 or close_m > 59 or end > _DAY:
                raise fail(field, f"{text!r} is not a time of day (00:00 to 24:00)")
            if end == start:
                raise fail(field, f"{text!r} is empty; all day is 00:00-24:00")
            if end < start:
                end += _DAY  # overnight: closes the next morning
            if any(start < other.close_minute and other.open_minute < end for other in day):
                raise fail(field, f"{text!r} overlaps another range")
            day.append(OpeningHours(WEEKDAY_KEYS.index(key) + 1, start, end))
        hours.extend(day)
    for overnight in hours:
        following = overnight.weekday % 7 + 1
        for other in hours:
            if other.weekday == following and other.open_minute < overnight.close_minute - _DAY:
                day_key = WEEKDAY_KEYS[following - 1]
                raise fail(
                    f"opening_hours.{day_key}",
                    f"opens before the previous night's hours end "
                    f"({_clock(overnight.close_minute - _DAY)})",
                )
    return tuple(sorted(hours, key=lambda h: (h.weekday, h.open_minute)))


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _attributes(value: Any, fail: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("attributes", "expected a mapping of names to values")
    attributes: dict[str, str] = {}
    for key, raw in value.items():
        field = f"attributes.{key}"
        if not isinstance(key, str) or not _ATTRIBUTE_KEY.match(key):
            raise fail(field, "expected a snake_case name")
        if key in _RESERVED_ATTRIBUTES:
            raise fail(field, "reserved name")
        if isinstance(raw, bool):
            attributes[key] = "true" if raw else "false"  # YAML turned "true" into a bool
        elif isinstance(raw, str | int | float):
            attributes[key] = str(raw)
        else:
            raise fail(field, "expected a string")
    return attributes
