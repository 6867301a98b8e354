"""The store registry: loading, validation, nearest-store search and opening hours."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from emma.context.config import DEFAULT_STORES_PATH
from emma.context.geo import haversine_m
from emma.context.stores import Store, StoreRegistry, StoreRegistryError, load_stores, parse_stores

BERLIN = ZoneInfo("Europe/Berlin")
DEMO_IDS = {
    "berlin-mitte": "BE",
    "muenchen-marienplatz": "BY",
    "hamburg-altona": "HH",
    "koeln-dom": "NW",
    "leipzig-zentrum": "SN",
    "freiburg-hauptbahnhof": "BW",
}


def _store(**overrides: Any) -> dict[str, Any]:
    store: dict[str, Any] = {
        "id": "test-store",
        "name": "Test",
        "latitude": 52.5,
        "longitude": 13.4,
        "country": "DE",
        "region": "BE",
        "time_zone": "Europe/Berlin",
        "geofence_m": 150,
        "opening_hours": {"mon": ["07:00-21:00"]},
        "attributes": {"format": "express"},
    }
    store.update(overrides)
    return store


def test_demo_registry_has_the_six_demo_stores() -> None:
    registry = load_stores(DEFAULT_STORES_PATH)
    assert {store.store_id: store.region for store in registry} == DEMO_IDS
    munich = registry.get("muenchen-marienplatz")
    assert munich is not None and munich.holiday_categories == ("catholic", "public")
    assert registry.get("berlin-mitte").holiday_categories == ("public",)  # type: ignore[union-attr]
    for store in registry:
        assert store.country == "DE"
        assert store.time_zone == "Europe/Berlin"
        assert store.geofence_m == 150
        # Shops close on Sundays, but the station store (Ladenschluss exempts stations).
        sunday = store.store_id == "freiburg-hauptbahnhof"
        assert {h.weekday for h in store.opening_hours} == {1, 2, 3, 4, 5, 6, *([7] * sunday)}
        assert store.attributes["format"] in {"supermarket", "express"}


def test_nearest_store_and_distance() -> None:
    registry = load_stores(DEFAULT_STORES_PATH)
    # Brandenburger Tor is about 2.9 km from the Berlin Mitte store at Alexanderplatz.
    (near,) = registry.nearest(52.5163, 13.3777)
    assert near.store.store_id == "berlin-mitte"
    assert 2_000 < near.distance_m < 3_000
    # Potsdam: Berlin, then Leipzig (~ 130 km), then Hamburg (~ 250 km).
    ranked = registry.nearest(52.3906, 13.0645, limit=3)
    assert [n.store.store_id for n in ranked] == [
        "berlin-mitte",
        "leipzig-zentrum",
        "hamburg-altona",
    ]
    assert ranked[0].distance_m < ranked[1].distance_m < ranked[2].distance_m


def test_known_distance_berlin_to_munich() -> None:
    registry = load_stores(DEFAULT_STORES_PATH)
    berlin = registry.get("berlin-mitte")
    assert berlin is not None
    (munich,) = [
        n for n in registry.nearest(berlin.latitude, berlin.longitude, 5) if n.store.region == "BY"
    ]
    assert munich.distance_m == pytest.approx(504_000, rel=0.01)


def test_max_distance_filters_and_limit_caps() -> None:
    registry = load_stores(DEFAULT_STORES_PATH)
    assert registry.nearest(52.5163, 13.3777, limit=5, max_distance_m=1_000) == []
    assert len(registry.nearest(52.5163, 13.3777, limit=5)) == 5
    assert len(registry.nearest(52.5163, 13.3777, limit=5, max_distance_m=300_000)) == 3


def test_opening_hours_in_local_time() -> None:
    registry = load_stores(DEFAULT_STORES_PATH)
    store = registry.get("berlin-mitte")
    assert store is not None
    assert store.within_hours(datetime(2026, 10, 14, 7, 0, tzinfo=BERLIN))  # Wednesday
    assert store.within_hours(datetime(2026, 10, 14, 20, 59, tzinfo=BERLIN))
    assert not store.within_hours(datetime(2026, 10, 14, 21, 0, tzinfo=BERLIN))
    assert not store.within_hours(datetime(2026, 10, 14, 6, 59, tzinfo=BERLIN))
    assert not store.within_hours(datetime(2026, 10, 18, 12, 0, tzinfo=BERLIN))  # Sunday


def test_opening_hours_with_a_break_and_until_midnight(tmp_path: Path) -> None:
    hours = {"mon": ["08:00-12:00", "14:00-24:00"], "sun": "closed"}
    (store,) = parse_stores({"stores": [_store(opening_hours=hours)]}, "x.yaml")
    assert [(h.weekday, h.open_minute, h.close_minute) for h in store.opening_hours] == [
        (1, 480, 720),
        (1, 840, 1440),
    ]
    assert not store.within_hours(datetime(2026, 10, 12, 13, 0, tzinfo=BERLIN))
    assert store.within_hours(datetime(2026, 10, 12, 23, 59, tzinfo=BERLIN))


def test_load_from_file_and_boolean_attributes(tmp_path: Path) -> None:
    path = tmp_path / "stores.yaml"
    path.write_text(yaml.safe_dump({"stores": [_store(attributes={"has_bakery": True})]}))
    (store,) = load_stores(path)
    assert store.attributes == {"has_bakery": "true"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"latitude": 91}, r"stores\[0\] \(test-store\)\.latitude: 91 is not in"),
        ({"longitude": "east"}, r"\(test-store\)\.longitude: expected a number"),
        ({"country": "XX"}, r"\(test-store\)\.country"),
        ({"region": "ZZ"}, r"\(test-store\)\.region: 'ZZ' is not a subdivision of DE"),
        ({"time_zone": "Europe/Atlantis"}, r"\(test-store\)\.time_zone"),
        ({"geofence_m": -1}, r"\(test-store\)\.geofence_m"),
        ({"opening_hours": {"mon": ["7-21"]}}, r"opening_hours\.mon: '7-21'"),
        ({"opening_hours": {"mon": ["07:00-07:00"]}}, r"opening_hours\.mon: .*is empty"),
        (
            {"opening_hours": {"mon": ["22:00-06:00"], "tue": ["05:00-12:00"]}},
            r"opening_hours\.tue: opens before the previous night's hours end \(06:00\)",
        ),
        (
            {"opening_hours": {"sun": ["22:00-02:00"], "mon": ["01:00-12:00"]}},
            r"opening_hours\.mon: opens before the previous night",
        ),
        ({"holiday_categories": ["school2"]}, r"holiday_categories: expected a list of"),
        ({"holiday_categories": "catholic"}, r"holiday_categories: expected a list of"),
        ({"opening_hours": {"mon": ["07:00-25:00"]}}, r"opening_hours\.mon: .*time of day"),
        ({"opening_hours": {"mon": ["07:00-12:00", "11:00-13:00"]}}, r"overlaps"),
        ({"opening_hours": {"monday": ["07:00-12:00"]}}, r"opening_hours\.monday: unknown weekday"),
        ({"attributes": {"Has Bakery": "yes"}}, r"attributes\.Has Bakery: expected a snake_case"),
        ({"attributes": {"id": "x"}}, r"attributes\.id: reserved"),
        ({"lattitude": 52}, r"\(test-store\)\.lattitude: unknown field"),
        ({"id": "Berlin Mitte"}, r"stores\[0\]\.id"),
    ],
)
def test_invalid_stores_name_file_store_and_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreRegistryError, match=r"^shop\.yaml: " + ".*" + message):
        parse_stores({"stores": [_store(**overrides)]}, "shop.yaml")


def test_duplicate_ids_and_bad_shapes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreRegistryError, match=r"stores\[1\] \(test-store\)\.id: duplicate"):
        parse_stores({"stores": [_store(), _store()]}, "shop.yaml")
    with pytest.raises(StoreRegistryError, match="list `stores`"):
        parse_stores({"shops": []}, "shop.yaml")
    missing = tmp_path / "missing.yaml"
    with pytest.raises(StoreRegistryError, match=r"missing\.yaml: cannot read"):
        load_stores(missing)


def test_overnight_hours_belong_to_the_day_they_open() -> None:
    hours = {"sat": ["20:00-06:00"], "sun": ["22:00-02:00"]}
    (store,) = parse_stores({"stores": [_store(opening_hours=hours)]}, "x.yaml")
    assert [(h.weekday, h.open_minute, h.close_minute) for h in store.opening_hours] == [
        (6, 1200, 1800),
        (7, 1320, 1560),
    ]
    saturday, sunday = date(2026, 10, 17), date(2026, 10, 18)
    assert store.opening_day(datetime(2026, 10, 17, 19, 59, tzinfo=BERLIN)) is None
    assert store.opening_day(datetime(2026, 10, 17, 23, 0, tzinfo=BERLIN)) == saturday
    assert store.opening_day(datetime(2026, 10, 18, 5, 59, tzinfo=BERLIN)) == saturday
    assert store.opening_day(datetime(2026, 10, 18, 6, 0, tzinfo=BERLIN)) is None
    assert store.opening_day(datetime(2026, 10, 18, 22, 0, tzinfo=BERLIN)) == sunday
    # Sunday's night runs into Monday: the week wraps.
    assert store.opening_day(datetime(2026, 10, 19, 1, 59, tzinfo=BERLIN)) == sunday
    assert store.opening_day(datetime(2026, 10, 19, 2, 0, tzinfo=BERLIN)) is None
    assert store.opening_day(datetime(2026, 10, 19, 23, 0, tzinfo=BERLIN)) is None
    assert not store.within_hours(datetime(2026, 10, 19, 12, 0, tzinfo=BERLIN))


def test_all_day_and_catholic_holidays(tmp_path: Path) -> None:
    entry = _store(
        opening_hours={"mon": "00:00-24:00"},
        region="BY",
        holiday_categories=["catholic"],
        open_on_public_holidays=True,
    )
    (store,) = parse_stores({"stores": [entry]}, "x.yaml")
    assert store.holiday_categories == ("catholic", "public")
    assert store.open_on_public_holidays
    assert store.within_hours(datetime(2026, 10, 12, 0, 0, tzinfo=BERLIN))
    assert store.within_hours(datetime(2026, 10, 12, 23, 59, tzinfo=BERLIN))


# --- nearest store against brute force ---------------------------------------------------------


def _random_registry(count: int, seed: int) -> StoreRegistry:
    """Stores all over the globe, in dense clusters, at the poles and the date line, and two
    at the very same place (a tie)."""
    rng = random.Random(seed)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(count // 2)]
    points += [(52.5 + rng.gauss(0, 0.05), 13.4 + rng.gauss(0, 0.05)) for _ in range(count // 4)]
    points += [(rng.uniform(-1, 1), rng.choice([-1, 1]) * rng.uniform(179, 180)) for _ in range(50)]
    points += [(89.9, 0.0), (-89.9, 45.0), (48.1, 11.5), (48.1, 11.5)]
    while len(points) < count:
        points.append((rng.uniform(-60, 70), rng.uniform(-180, 180)))
    return StoreRegistry(
        [
            Store(f"s{i}", f"S{i}", lat, lon, "DE", "", "UTC", 100.0, (), {})
            for i, (lat, lon) in enumerate(points)
        ]
    )


RANDOM_REGISTRY = _random_registry(3000, seed=7)
LATITUDES = np.array([s.latitude for s in RANDOM_REGISTRY])
LONGITUDES = np.array([s.longitude for s in RANDOM_REGISTRY])


@settings(max_examples=300, deadline=None)
@given(
    latitude=st.floats(min_value=-90, max_value=90),
    longitude=st.floats(min_value=-180, max_value=180),
    limit=st.integers(min_value=1, max_value=6),
)
def test_nearest_stores_equal_a_brute_force_scan(
    latitude: float, longitude: float, limit: int
) -> None:
    distances = haversine_m(latitude, longitude, LATITUDES, LONGITUDES)
    expected = np.argsort(distances, kind="stable")[:limit]
    found = RANDOM_REGISTRY.nearest(latitude, longitude, limit)
    assert len(found) == limit
    for near, index in zip(found, expected, strict=True):
        # The same store, unless two are equally far to within rounding.
        assert near.distance_m == pytest.approx(distances[index], abs=1e-6)
        if near.store.store_id != f"s{index}":
            assert abs(distances[int(near.store.store_id[1:])] - distances[index]) < 1e-6


def test_equally_near_stores_keep_registry_order() -> None:
    found = RANDOM_REGISTRY.nearest(48.1, 11.5, limit=2)
    assert [near.distance_m for near in found] == [0.0, 0.0]
    assert int(found[0].store.store_id[1:]) < int(found[1].store.store_id[1:])


def test_nearest_with_more_than_all_and_an_empty_registry() -> None:
    registry = load_stores(DEFAULT_STORES_PATH)
    assert len(registry.nearest(0.0, 0.0, limit=100)) == len(DEMO_IDS)
    assert StoreRegistry([]).nearest(0.0, 0.0) == []
    assert registry.nearest(0.0, 0.0, limit=0) == []


def test_a_json_registry_loads_like_yaml(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_STORES_PATH.read_text())
    path = tmp_path / "stores.json"
    path.write_text(json.dumps(data))
    from_json, from_yaml = load_stores(path), load_stores(DEFAULT_STORES_PATH)
    assert [dataclasses.astuple(s) for s in from_json] == [
        dataclasses.astuple(s) for s in from_yaml
    ]
    broken = tmp_path / "broken.json"
    broken.write_text('{"stores": [')
    with pytest.raises(StoreRegistryError, match=r"broken\.json: cannot read the store file"):
        load_stores(broken)


def test_stores_with_the_same_week_share_its_checked_hours() -> None:
    week = {"mon": ["07:00-21:00"], "sat": "22:00-06:00", "sun": "closed"}
    registry = parse_stores(
        {
            "stores": [
                _store(id="a", opening_hours=dict(week)),
                _store(id="b", opening_hours=dict(week)),
                _store(id="c", opening_hours={**week, "mon": ["08:00-20:00"]}),
            ]
        },
        "chain.yaml",
    )
    a, b, c = (registry.get(key) for key in "abc")
    assert a is not None and b is not None and c is not None
    assert a.opening_hours is b.opening_hours
    assert c.opening_hours[0].open_minute == 8 * 60


def test_a_bad_week_shared_by_stores_names_the_first_with_it() -> None:
    bad = {"mon": ["21:00-07:00"], "tue": ["06:00-12:00"]}  # opens before Monday night ends
    stores = [_store(id="good"), _store(id="bad-1", opening_hours=bad)]
    stores.append(_store(id="bad-2", opening_hours=dict(bad)))
    with pytest.raises(StoreRegistryError, match=r"stores\[1\] \(bad-1\)\.opening_hours\.tue"):
        parse_stores({"stores": stores}, "chain.yaml")
    with pytest.raises(StoreRegistryError, match=r"stores\[0\] \(bad-2\)\.opening_hours\.tue"):
        parse_stores({"stores": stores[2:]}, "chain.yaml")
