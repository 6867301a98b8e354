"""The store registry: loading, validation, nearest-store search and opening hours."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from emma.context.config import DEFAULT_STORES_PATH
from emma.context.stores import StoreRegistryError, load_stores, parse_stores

BERLIN = ZoneInfo("Europe/Berlin")
DEMO_IDS = {
    "berlin-mitte": "BE",
    "muenchen-marienplatz": "BY",
    "hamburg-altona": "HH",
    "koeln-dom": "NW",
    "leipzig-zentrum": "SN",
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


def test_demo_registry_has_the_five_demo_stores() -> None:
    registry = load_stores(DEFAULT_STORES_PATH)
    assert {store.store_id: store.region for store in registry} == DEMO_IDS
    for store in registry:
        assert store.country == "DE"
        assert store.time_zone == "Europe/Berlin"
        assert store.geofence_m == 150
        assert {h.weekday for h in store.opening_hours} == {1, 2, 3, 4, 5, 6}
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
        ({"opening_hours": {"mon": ["21:00-07:00"]}}, r"opening_hours\.mon: .*closes before"),
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
