"""Resolves the context of one request: place, local time, calendar, store and basket."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from emma.common.basket import BasketLine
from emma.context import calendar, clock
from emma.context.calendar import Holiday, HolidayCalendar
from emma.context.geo import check_point, haversine_m
from emma.context.stores import Store, StoreRegistry
from emma.runtime.errors import InvalidArgument

# Holiday and retail calendars mean little outside these years; they also bound the lookups.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class ContextRequest:
    """What a caller tells about a request; empty strings and None mean "not given"."""

    instant: datetime | None = None
    store_id: str = ""
    location: tuple[float, float] | None = None  # (latitude, longitude) in degrees
    country: str = ""
    region: str = ""
    time_zone: str = ""
    touchpoint: str = "unspecified"
    device: str = ""
    basket: tuple[BasketLine, ...] = ()


@dataclasses.dataclass(frozen=True)
class BasketSummary:
    # Basket lines, not pieces: a line may be 0.4 kg of cheese.
    item_count: int = 0
    value: float = 0.0
    categories: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ResolvedContext:
    local_time: datetime
    time_zone: str
    daypart: str
    weekday: int
    weekend: bool
    season: str
    southern_hemisphere: bool
    country: str
    region: str
    holiday: Holiday | None
    next_holiday: Holiday | None
    days_to_next_holiday: int
    retail_seasons: tuple[str, ...]
    store: Store | None
    # Metres from the request's location to `store`; None without a location.
    store_distance_m: float | None
    in_store: bool
    store_open: bool
    touchpoint: str
    device: str
    basket: BasketSummary


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ContextResolver:
    """Pure context resolution over a store registry; raises InvalidArgument on bad input."""

    def __init__(
        self,
        stores: StoreRegistry,
        *,
        dayparts: clock.Dayparts,
        default_time_zone: str,
        default_country: str,
        holidays: HolidayCalendar | None = None,
        region_radius_m: float = 25_000.0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.stores = stores
        self.dayparts = dayparts
        self.default_time_zone = default_time_zone
        self.default_country = default_country
        self.holidays = holidays or HolidayCalendar()
        self.region_radius_m = region_radius_m
        self._now = now

    def resolve(self, request: ContextRequest) -> ResolvedContext:
        instant = self._instant(request.instant)
        location = request.location
        if location is not None:
            check_point(location[0], location[1], "location")
        if request.time_zone and not clock.is_time_zone(request.time_zone):
            raise InvalidArgument("time_zone", f"{request.time_zone!r} is not an IANA time zone")

        explicit = None
        if request.store_id:
            explicit = self.stores.get(request.store_id)
            if explicit is None:
                raise InvalidArgument("store_id", f"unknown store {request.store_id!r}")
        store, distance = self._store(explicit, location)

        zone_name = clock.choose_zone(
            explicit.time_zone if explicit else "",
            location,
            request.time_zone,
            self.default_time_zone,
        )
        local = clock.local_time(instant, zone_name)
        today = local.date()

        # A nearby store tells the country and region a bare position cannot.
        near = distance is not None and distance <= self.region_radius_m
        place_store = explicit or (store if near else None)
        country, region = self._country_region(request, place_store, zone_name)

        # Without any position the request is taken to be in the northern hemisphere.
        latitude = location[0] if location else (store.latitude if store else 0.0)
        southern = latitude < 0
        holiday = self.holidays.on(country, region, today)
        upcoming = self.holidays.next_after(country, region, today)

        return ResolvedContext(
            local_time=local,
            time_zone=zone_name,
            daypart=self.dayparts.at(local.hour),
            weekday=local.isoweekday(),
            weekend=clock.is_weekend(local),
            season=calendar.season(today, southern),
            southern_hemisphere=southern,
            country=country,
            region=region,
            holiday=holiday,
            next_holiday=upcoming,
            days_to_next_holiday=(upcoming.day - today).days if upcoming else 0,
            retail_seasons=calendar.retail_seasons(today, southern),
            store=store,
            store_distance_m=distance,
            in_store=store is not None and distance is not None and distance <= store.geofence_m,
            store_open=store is not None and self.is_open(store, instant),
            touchpoint=request.touchpoint,
            device=request.device,
            basket=summarise_basket(request.basket),
        )

    def is_open(self, store: Store, instant: datetime) -> bool:
        """Open at `instant` by the store's hours in its own zone, closed on its holidays."""
        local = clock.local_time(instant, store.time_zone)
        if not store.within_hours(local):
            return False
        if store.open_on_public_holidays:
            return True
        return self.holidays.on(store.country, store.region, local.date()) is None

    def _instant(self, instant: datetime | None) -> datetime:
        if instant is None:
            return self._now()
        if instant.tzinfo is None:
            raise InvalidArgument("time", "must carry a UTC offset")
        if not EARLIEST <= instant < LATEST:
            raise InvalidArgument("time", f"{instant.isoformat()} is not in the years 1900..2199")
        return instant

    def _store(
        self, explicit: Store | None, location: tuple[float, float] | None
    ) -> tuple[Store | None, float | None]:
        if location is None:
            return explicit, None
        if explicit is not None:
            one = haversine_m(
                location[0],
                location[1],
                np.array([explicit.latitude]),
                np.array([explicit.longitude]),
            )
            return explicit, float(one[0])
        nearest = self.stores.nearest(location[0], location[1], limit=1)
        if not nearest:
            return None, None
        return nearest[0].store, nearest[0].distance_m

    def _country_region(
        self, request: ContextRequest, store: Store | None, zone_name: str
    ) -> tuple[str, str]:
        """The request's country, else the store's, else the zone's, else the default."""
        country = request.country.upper() if request.country else ""
        if country and not calendar.is_country(country):
            raise InvalidArgument("country", f"{request.country!r} is not a country with holidays")
        if not country and store is not None:
            country = store.country
        if not country:
            zone_country = clock.zone_country(zone_name) or ""
            country = zone_country if calendar.is_country(zone_country) else self.default_country
        if request.region:
            region = calendar.canonical_region(country, request.region)
            if region is None:
                raise InvalidArgument(
                    "region", f"{request.region!r} is not a subdivision of {country}"
                )
            return country, region
        if store is not None and store.country == country:
            return country, store.region
        return country, ""


def summarise_basket(lines: tuple[BasketLine, ...]) -> BasketSummary:
    """Counts lines, sums amounts (negative lines such as deposit returns count) and categories."""
    for index, line in enumerate(lines):
        if not (math.isfinite(line.quantity) and line.quantity >= 0):
            raise InvalidArgument(f"basket.items[{index}].quantity", "must be a number >= 0")
        if not math.isfinite(line.amount):
            raise InvalidArgument(f"basket.items[{index}].amount", "must be a finite number")
    categories = sorted({line.category.strip() for line in lines if line.category.strip()})
    return BasketSummary(
        item_count=len(lines),
        value=math.fsum(line.amount for line in lines),
        categories=tuple(categories),
    )
