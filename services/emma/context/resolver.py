"""Resolves the context of one request: place, local time, calendar, store and basket."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from emma.common.basket import MAX_AMOUNT
from emma.context import clock, countries
from emma.context.almanac import Almanac
from emma.context.calendar import PUBLIC_ONLY, Holiday
from emma.context.geo import check_point, distance_m
from emma.context.stores import Store, StoreRegistry
from emma.runtime.errors import InvalidArgument

# The years requests may fall in: the holidays package's calendars end with 2100, and
# calendars of earlier centuries would mean little to a retailer.
FIRST_YEAR, LAST_YEAR = 1900, 2100
EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)


# ContextRequest, ResolvedContext and BasketSummary are named tuples rather than frozen
# dataclasses: all are built on every request, and a frozen dataclass of 22 fields takes
# three times as long.


class BasketLineLike(Protocol):
    """What the context reads of a basket line: an emma.common.basket.BasketLine, or the
    request's BasketItem itself (converting each line per request cost more than the
    summary)."""

    @property
    def category(self) -> str: ...

    @property
    def quantity(self) -> float: ...

    @property
    def amount(self) -> float: ...


class ContextRequest(NamedTuple):
    """What a caller tells about a request; empty strings and None mean "not given"."""

    instant: datetime | None = None
    store_id: str = ""
    location: tuple[float, float] | None = None  # (latitude, longitude) in degrees
    country: str = ""
    region: str = ""
    time_zone: str = ""
    touchpoint: str = "unspecified"
    device: str = ""
    basket: Sequence[BasketLineLike] = ()


class BasketSummary(NamedTuple):
    """Basket lines, not pieces: a line may be 0.4 kg of cheese."""

    item_count: int = 0
    value: float = 0.0
    categories: tuple[str, ...] = ()


class ResolvedContext(NamedTuple):
    """The context of one request; docs/context.md says where each fact comes from."""

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
    # The request's store, else the nearest one, however far.
    store: Store | None
    # Metres from the request's location to `store`; None without a location.
    store_distance_m: float | None
    # Whether `store` is the request's own or within the region radius: its place.
    store_nearby: bool
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
        almanac: Almanac | None = None,
        region_radius_m: float = 25_000.0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.stores = stores
        self.dayparts = dayparts
        self.default_time_zone = default_time_zone
        self.default_country = default_country
        self.almanac = almanac or Almanac()
        self.region_radius_m = region_radius_m
        self._now = now

    def resolve(self, request: ContextRequest) -> ResolvedContext:
        instant = self._instant(request.instant)
        location = request.location
        if location is not None:
            check_point(location[0], location[1], "location")
        if request.time_zone and not clock.is_time_zone(request.time_zone):
            raise InvalidArgument("time_zone", f"{request.time_zone!r} is not an IANA time zone")
        requested_country = request.country.upper() if request.country else ""
        if requested_country and not countries.is_country(requested_country):
            raise InvalidArgument("country", f"{request.country!r} is not a country with holidays")

        explicit = None
        if request.store_id:
            explicit = self.stores.get(request.store_id)
            if explicit is None:
                raise InvalidArgument("store_id", f"unknown store {request.store_id!r}")
        store, distance = self._store(explicit, location)
        in_store = store is not None and distance is not None and distance <= store.geofence_m
        # Inside a store's geofence the request is at that store: its zone, no polygon lookup.
        at_store = explicit or (store if in_store else None)

        zone = clock.choose_zone(
            at_store.time_zone if at_store else "",
            location,
            request.time_zone,
            self.default_time_zone,
            requested_country,
        )
        local = clock.local_time(instant, zone.name)
        today = local.date()

        # A nearby store tells the country and region a bare position cannot.
        near = distance is not None and distance <= self.region_radius_m
        place_store = explicit or (store if near else None)
        country, region = self._country_region(request, requested_country, place_store, zone)
        # A store's extra holiday categories hold where it is, not across its whole region.
        categories = PUBLIC_ONLY
        if place_store is not None and (place_store.country, place_store.region) == (
            country,
            region,
        ):
            categories = place_store.holiday_categories
        southern = self._southern(location, explicit, zone)
        facts = self.almanac.facts(country, region, today, southern, categories)
        store_open = False
        if store is not None:
            same_zone = zone.name == store.time_zone
            store_local = local if same_zone else clock.local_time(instant, store.time_zone)
            store_open = self._open_at(store, store_local)

        return ResolvedContext(
            local_time=local,
            time_zone=zone.name,
            daypart=self.dayparts.at(local.hour),
            weekday=local.isoweekday(),
            weekend=clock.is_weekend(local),
            season=facts.season,
            southern_hemisphere=southern,
            country=country,
            region=region,
            holiday=facts.holiday,
            next_holiday=facts.next_holiday,
            days_to_next_holiday=facts.days_to_next_holiday,
            retail_seasons=facts.retail_seasons,
            store=store,
            store_distance_m=distance,
            store_nearby=place_store is not None,
            in_store=in_store,
            store_open=store_open,
            touchpoint=request.touchpoint,
            device=request.device,
            basket=summarise_basket(request.basket),
        )

    def is_open(self, store: Store, instant: datetime) -> bool:
        """Open at `instant` by the store's hours in its own zone, closed on its holidays.

        Overnight hours count for the day they began: a Christmas Eve night shift stays
        open past midnight, one beginning on Christmas Day does not open.
        """
        return self._open_at(store, clock.local_time(instant, store.time_zone))

    def _open_at(self, store: Store, local: datetime) -> bool:
        """is_open for a wall-clock time in the store's zone."""
        day = store.opening_day(local)
        if day is None:
            return False
        if store.open_on_public_holidays:
            return True
        holiday = self.almanac.holiday_on(
            store.country, store.region, day, store.holiday_categories
        )
        return holiday is None

    def _instant(self, instant: datetime | None) -> datetime:
        if instant is None:
            return self._now()
        if instant.tzinfo is None:
            raise InvalidArgument("time", "must carry a UTC offset")
        if not EARLIEST <= instant < LATEST:
            raise InvalidArgument(
                "time", f"{instant.isoformat()} is not in the years {FIRST_YEAR}..{LAST_YEAR}"
            )
        return instant

    def _store(
        self, explicit: Store | None, location: tuple[float, float] | None
    ) -> tuple[Store | None, float | None]:
        if location is None:
            return explicit, None
        if explicit is not None:
            return explicit, distance_m(*location, explicit.latitude, explicit.longitude)
        nearest = self.stores.nearest_one(location[0], location[1])
        if nearest is None:
            return None, None
        return nearest

    def _country_region(
        self,
        request: ContextRequest,
        requested_country: str,
        store: Store | None,
        zone: clock.ZoneChoice,
    ) -> tuple[str, str]:
        """The request's country, else the store's, else that of a zone the request's place
        or time zone gave, else the default."""
        country = requested_country
        if not country and store is not None:
            country = store.country
        if not country and zone.source in ("location", "request"):
            zone_country = clock.zone_country(zone.name) or ""
            country = zone_country if countries.is_country(zone_country) else ""
        if not country:
            country = self.default_country
        if request.region:
            region = countries.canonical_region(country, request.region)
            if region is None:
                raise InvalidArgument(
                    "region", f"{request.region!r} is not a subdivision of {country}"
                )
            return country, region
        if store is not None and store.country == country:
            return country, store.region
        return country, ""

    @staticmethod
    def _southern(
        location: tuple[float, float] | None, store: Store | None, zone: clock.ZoneChoice
    ) -> bool:
        """The hemisphere of the position, else the store's, else of the zone's main city;
        north when none is known (Etc/UTC)."""
        if location is not None:
            return location[0] < 0
        if store is not None:
            return store.latitude < 0
        latitude = clock.zone_latitude(zone.name)
        return latitude is not None and latitude < 0


_EMPTY_BASKET = BasketSummary()


def summarise_basket(lines: Sequence[BasketLineLike]) -> BasketSummary:
    """Counts lines, sums amounts (negative lines such as deposit returns count) and categories."""
    if not lines:
        return _EMPTY_BASKET
    categories = set()
    for index, line in enumerate(lines):
        if not (math.isfinite(line.quantity) and line.quantity >= 0):
            raise InvalidArgument(f"basket.items[{index}].quantity", "must be a number >= 0")
        if not (math.isfinite(line.amount) and abs(line.amount) <= MAX_AMOUNT):
            # Bounded, so the basket's sum stays finite.
            raise InvalidArgument(
                f"basket.items[{index}].amount", f"must be a number within ±{MAX_AMOUNT:g}"
            )
        category = line.category.strip()
        if category:
            categories.add(category)
    return BasketSummary(
        item_count=len(lines),
        value=math.fsum(line.amount for line in lines),
        categories=tuple(sorted(categories)),
    )
