"""The pure context resolver and its features, by example (properties: test_properties)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from emma.common.basket import BasketLine
from emma.context import clock
from emma.context.config import DEFAULT_STORES_PATH
from emma.context.features import DAYS_TO_HOLIDAY_CAP, FEATURE_NAME, context_features
from emma.context.resolver import ContextRequest, ContextResolver
from emma.context.stores import load_stores, parse_stores
from emma.runtime.errors import InvalidArgument

IN_BERLIN_MITTE = (52.5246, 13.4110)  # some 40 m from the store
MARIENPLATZ = (48.13743, 11.57549)
NOON = datetime(2026, 10, 14, 10, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Berlin


DAYPARTS = clock.parse_dayparts("morning=5,lunch=11,afternoon=14,evening=17,night=22")


@pytest.fixture(scope="module")
def resolver() -> ContextResolver:
    return ContextResolver(
        load_stores(DEFAULT_STORES_PATH),
        dayparts=DAYPARTS,
        default_time_zone="Europe/Berlin",
        default_country="DE",
        now=lambda: NOON,
    )


def features_of(resolver: ContextResolver, request: ContextRequest) -> dict[str, list[object]]:
    named: dict[str, list[object]] = {}
    for feature in context_features(resolver.resolve(request)):
        named.setdefault(feature.name, []).append(feature.value)
    return named


def test_resolve_for_a_store_at_the_till(resolver: ContextResolver) -> None:
    request = ContextRequest(
        instant=datetime(2026, 12, 24, 8, 30, tzinfo=UTC),
        store_id="muenchen-marienplatz",
        touchpoint="pos",
        basket=(
            BasketLine("stollen", "bakery", 1, 12.99),
            BasketLine("gluehwein", "wine", 2, 7.98),
            BasketLine("pfand", "", 1, -0.25),
        ),
    )
    context = resolver.resolve(request)
    assert context.local_time.isoformat() == "2026-12-24T09:30:00+01:00"
    assert (context.daypart, context.weekday, context.weekend) == ("morning", 4, False)
    assert (context.country, context.region, context.season) == ("DE", "BY", "winter")
    assert context.retail_seasons == ("advent", "christmas")
    assert context.holiday is None
    assert context.next_holiday is not None and context.next_holiday.name == "Erster Weihnachtstag"
    assert context.days_to_next_holiday == 1
    assert context.store is not None and context.store.store_id == "muenchen-marienplatz"
    assert context.store_distance_m is None and not context.in_store
    assert context.store_open
    assert context.basket.item_count == 3
    assert context.basket.value == pytest.approx(20.72)
    assert context.basket.categories == ("bakery", "wine")

    named = features_of(resolver, request)
    assert named["daypart"] == ["morning"]
    assert named["weekday"] == ["thursday"]
    assert named["retail_season"] == ["advent", "christmas"]
    assert named["basket_category"] == ["bakery", "wine"]
    assert named["store_format"] == ["supermarket"]
    assert named["touchpoint"] == ["pos"]
    assert named["hour"] == [9.0]
    assert named["is_holiday"] == [0.0]
    assert named["days_to_holiday"] == [1.0]
    assert named["basket_items"] == [3.0]
    assert named["store_open"] == [1.0]
    assert "distance_km" not in named
    assert all(FEATURE_NAME.match(name) for name in named)


def test_resolve_for_coordinates_picks_the_nearest_store(resolver: ContextResolver) -> None:
    context = resolver.resolve(ContextRequest(instant=NOON, location=IN_BERLIN_MITTE))
    assert context.store is not None and context.store.store_id == "berlin-mitte"
    assert context.store_distance_m is not None and context.store_distance_m < 150
    assert context.in_store and context.store_open
    assert (context.time_zone, context.country, context.region) == ("Europe/Berlin", "DE", "BE")
    named = features_of(resolver, ContextRequest(instant=NOON, location=IN_BERLIN_MITTE))
    assert named["in_store"] == [1.0]
    assert named["distance_km"][0] == pytest.approx(context.store_distance_m / 1000)


def test_a_location_near_a_store_takes_its_region(resolver: ContextResolver) -> None:
    # Munich-Schwabing, about 4 km from the Marienplatz store: Bavaria, not in the store.
    context = resolver.resolve(
        ContextRequest(instant=datetime(2026, 1, 6, 10, tzinfo=UTC), location=(48.1642, 11.5858))
    )
    assert context.region == "BY" and not context.in_store
    assert context.holiday is not None and context.holiday.name == "Heilige Drei Könige"
    # The same day in Berlin is no holiday.
    berlin = resolver.resolve(
        ContextRequest(instant=datetime(2026, 1, 6, 10, tzinfo=UTC), store_id="berlin-mitte")
    )
    assert berlin.holiday is None and berlin.region == "BE"


def test_far_from_any_store_the_zone_gives_country_and_hemisphere(
    resolver: ContextResolver,
) -> None:
    context = resolver.resolve(
        ContextRequest(instant=datetime(2026, 7, 1, 12, tzinfo=UTC), location=(-33.87, 151.21))
    )
    assert context.time_zone == "Australia/Sydney"
    assert context.local_time.isoformat() == "2026-07-01T22:00:00+10:00"
    assert (context.country, context.region) == ("AU", "")
    assert context.southern_hemisphere and context.season == "winter"
    assert context.store is not None and not context.in_store
    assert context.store_distance_m is not None and context.store_distance_m > 15_000_000


def test_request_fields_override_the_store(resolver: ContextResolver) -> None:
    context = resolver.resolve(
        ContextRequest(instant=NOON, store_id="berlin-mitte", country="de", region="by")
    )
    assert (context.country, context.region) == ("DE", "BY")
    # Without coordinates a request's zone is used, but a store's zone wins over it.
    assert resolver.resolve(ContextRequest(instant=NOON, time_zone="Asia/Tokyo")).time_zone == (
        "Asia/Tokyo"
    )
    assert (
        resolver.resolve(
            ContextRequest(instant=NOON, store_id="berlin-mitte", time_zone="Asia/Tokyo")
        ).time_zone
        == "Europe/Berlin"
    )


def test_store_closed_on_public_holidays_and_sundays(resolver: ContextResolver) -> None:
    unity_day = datetime(2026, 10, 3, 10, tzinfo=UTC)  # a Saturday, within opening hours
    context = resolver.resolve(ContextRequest(instant=unity_day, store_id="koeln-dom"))
    assert context.holiday is not None and context.holiday.name == "Tag der Deutschen Einheit"
    assert not context.store_open
    named = features_of(resolver, ContextRequest(instant=unity_day, store_id="koeln-dom"))
    assert named["is_holiday"] == [1.0] and named["holiday"] == ["Tag der Deutschen Einheit"]
    sunday = datetime(2026, 10, 11, 10, tzinfo=UTC)
    assert not resolver.resolve(ContextRequest(instant=sunday, store_id="koeln-dom")).store_open


def test_store_open_follows_local_time_across_dst(resolver: ContextResolver) -> None:
    # Leipzig opens at 08:00 local: 07:00 UTC in winter, 06:00 UTC in summer time.
    saturday = resolver.resolve(
        ContextRequest(instant=datetime(2026, 3, 28, 6, 30, tzinfo=UTC), store_id="leipzig-zentrum")
    )
    monday = resolver.resolve(
        ContextRequest(instant=datetime(2026, 3, 30, 6, 30, tzinfo=UTC), store_id="leipzig-zentrum")
    )
    assert saturday.local_time.hour == 7 and not saturday.store_open
    assert monday.local_time.hour == 8 and monday.store_open


def test_unset_time_uses_the_clock(resolver: ContextResolver) -> None:
    context = resolver.resolve(ContextRequest())
    assert context.local_time == NOON
    assert (context.country, context.time_zone, context.daypart) == ("DE", "Europe/Berlin", "lunch")
    named = features_of(resolver, ContextRequest())
    assert named["touchpoint"] == ["unspecified"]
    assert "store_id" not in named and "distance_km" not in named


def test_days_to_holiday_is_capped(resolver: ContextResolver) -> None:
    # From 7 June 2026 (after Corpus Christi) Berlin has no holiday until 3 October.
    request = ContextRequest(instant=datetime(2026, 6, 7, 10, tzinfo=UTC), store_id="berlin-mitte")
    assert resolver.resolve(request).days_to_next_holiday > DAYS_TO_HOLIDAY_CAP
    assert features_of(resolver, request)["days_to_holiday"] == [float(DAYS_TO_HOLIDAY_CAP)]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ContextRequest(location=(90.5, 0.0)), "location.latitude"),
        (ContextRequest(location=(float("nan"), 0.0)), "location.latitude"),
        (ContextRequest(location=(0.0, -180.1)), "location.longitude"),
        (ContextRequest(location=(0.0, float("inf"))), "location.longitude"),
        (ContextRequest(store_id="paris-louvre"), "store_id"),
        (ContextRequest(time_zone="Mars/Olympus"), "time_zone"),
        (ContextRequest(country="XX"), "country"),
        (ContextRequest(region="ZZ"), "region"),
        (ContextRequest(instant=datetime(1800, 1, 1, tzinfo=UTC)), "time"),
        (ContextRequest(instant=datetime(2101, 1, 1, tzinfo=UTC)), "time"),
        (ContextRequest(instant=datetime(2026, 1, 1)), "time"),
        (ContextRequest(basket=(BasketLine("x", "y", -1, 1),)), "basket.items[0].quantity"),
        (
            ContextRequest(
                basket=(BasketLine("x", "y", 1, 1), BasketLine("x", "y", 1, float("nan")))
            ),
            "basket.items[1].amount",
        ),
    ],
)
def test_bad_input_names_the_field(
    resolver: ContextResolver, request_: ContextRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        resolver.resolve(request_)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_a_request_time_zone_gives_country_and_hemisphere() -> None:
    resolver = ContextResolver(
        load_stores(DEFAULT_STORES_PATH),
        dayparts=DAYPARTS,
        default_time_zone="Europe/Berlin",
        default_country="AT",
    )
    sydney = resolver.resolve(ContextRequest(instant=NOON, time_zone="Australia/Sydney"))
    assert (sydney.country, sydney.southern_hemisphere, sydney.season) == ("AU", True, "spring")
    # A country with one zone brings its zone; the default zone does not decide the country.
    japan = resolver.resolve(ContextRequest(instant=NOON, country="jp"))
    assert (japan.time_zone, japan.country) == ("Asia/Tokyo", "JP")
    assert japan.local_time.isoformat() == "2026-10-14T19:00:00+09:00"
    default = resolver.resolve(ContextRequest(instant=NOON))
    assert (default.time_zone, default.country) == ("Europe/Berlin", "AT")


def test_assumption_closes_munich_but_not_berlin(resolver: ContextResolver) -> None:
    assumption = datetime(2026, 8, 15, 10, tzinfo=UTC)  # a Saturday
    munich = resolver.resolve(ContextRequest(instant=assumption, store_id="muenchen-marienplatz"))
    assert munich.holiday is not None and munich.holiday.name == "Mariä Himmelfahrt"
    assert not munich.store_open
    berlin = resolver.resolve(ContextRequest(instant=assumption, store_id="berlin-mitte"))
    assert berlin.holiday is None and berlin.store_open
    # Bavaria without the store: state-wide holidays only.
    bavaria = resolver.resolve(ContextRequest(instant=assumption, country="DE", region="BY"))
    assert bavaria.holiday is None


NIGHT_STORE = {
    "id": "hamburg-night",
    "name": "Emma Hamburg Nachtladen",
    "latitude": 53.55,
    "longitude": 9.99,
    "country": "DE",
    "region": "HH",
    "time_zone": "Europe/Berlin",
    "geofence_m": 100,
    "opening_hours": {day: ["20:00-04:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
}


def test_overnight_hours_count_for_the_day_they_began() -> None:
    resolver = ContextResolver(
        parse_stores({"stores": [NIGHT_STORE]}, "night.yaml"),
        dayparts=DAYPARTS,
        default_time_zone="Europe/Berlin",
        default_country="DE",
    )

    def open_at(year: int, month: int, day: int, hour: int) -> bool:
        instant = datetime(year, month, day, hour, tzinfo=ZoneInfo("Europe/Berlin"))
        return resolver.resolve(
            ContextRequest(instant=instant, store_id="hamburg-night")
        ).store_open

    # Christmas Eve 2026 is a Thursday: its night shift runs on into Christmas Day.
    assert open_at(2026, 12, 24, 23)
    assert open_at(2026, 12, 25, 3)
    assert not open_at(2026, 12, 25, 4)
    # The shift that would begin on Christmas Day (a Friday) does not open, nor its small hours.
    assert not open_at(2026, 12, 25, 22)
    assert not open_at(2026, 12, 26, 2)
    # Friday's shift ends on Saturday morning; Saturday itself has none.
    assert open_at(2026, 10, 17, 3)
    assert not open_at(2026, 10, 17, 22)


def test_inside_a_geofence_the_store_gives_the_zone() -> None:
    # A store whose registry zone differs from the polygon's (as at a border): at the store
    # its zone wins; a kilometre away the coordinates decide.
    store = {**NIGHT_STORE, "latitude": 52.52, "longitude": 13.40, "time_zone": "Europe/Zurich"}
    resolver = ContextResolver(
        parse_stores({"stores": [store]}, "border.yaml"),
        dayparts=DAYPARTS,
        default_time_zone="UTC",
        default_country="DE",
    )
    inside = resolver.resolve(ContextRequest(instant=NOON, location=(52.5201, 13.4001)))
    assert inside.in_store and inside.time_zone == "Europe/Zurich"
    outside = resolver.resolve(ContextRequest(instant=NOON, location=(52.53, 13.40)))
    assert not outside.in_store and outside.time_zone == "Europe/Berlin"
