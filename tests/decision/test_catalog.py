"""Catalog loading: the demo catalog is valid; errors name the file, the offer and the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from emma.decision.catalog import CatalogError, load_catalog, parse_catalog
from emma.decision.config import DEFAULT_CATALOG
from emma.decision.domain import Channel, Purpose


def minimal(**changes: Any) -> dict[str, Any]:
    offer = {"id": "emmentaler-20", "title": "20%", "category": "cheese", "channels": ["receipt"]}
    offer.update(changes)
    fallback = {"id": "points", "title": "Points", "category": "loyalty", "channels": ["receipt"]}
    return {"offers": [offer, {**fallback, "fallback": True}]}


def test_demo_catalog_loads_with_its_fallback() -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    ids = [offer.offer_id for offer in catalog.offers]
    assert len(ids) >= 14
    assert catalog.fallback.offer_id == "loyalty-points"
    assert catalog.fallback not in catalog.candidates
    riesling = catalog.get("riesling-cheese-pairing")
    assert riesling is not None and riesling.consent is Purpose.PERSONALISATION
    advent = catalog.get("gluehwein-lebkuchen-advent")
    assert advent is not None and advent.seasons == {"advent"}
    assert Channel.CASHIER_PROMPT in advent.channels


def test_fields_are_parsed_into_typed_values() -> None:
    catalog = parse_catalog(
        minimal(
            valid_from="2026-01-01",
            valid_until=dt.date(2026, 12, 31),
            seasons=["summer", "advent"],
            dayparts="morning",
            features={"discount": 20, "kind": "percent_off"},
            payload={"code": 20},
            priority=3,
        ),
        "mem.yaml",
    )
    offer = catalog.offers[0]
    assert offer.valid_from == dt.date(2026, 1, 1)
    assert offer.valid_until == dt.date(2026, 12, 31)
    assert offer.seasons == {"summer", "advent"}
    assert offer.dayparts == {"morning"}
    assert offer.features == {"discount": 20.0, "kind": "percent_off"}
    assert offer.payload == {"code": "20"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channels": ["fax"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"title": ""}, "title"),
        ({"seasons": ["sommer"]}, "seasons"),
        ({"dayparts": ["brunch"]}, "dayparts"),
        ({"valid_from": "next week"}, "valid_from"),
        ({"valid_from": "2026-02-01", "valid_until": "2026-01-01"}, "valid_until"),
        ({"consent": "gossip"}, "consent"),
        ({"discount_pct": 120}, "discount_pct"),
        ({"value": "cheap"}, "value"),
        ({"priority": 1.5}, "priority"),
        ({"features": {"x": [1]}}, "features.x"),
        ({"colour": "red"}, "colour"),
        ({"id": "Emmentaler 20"}, "id"),
    ],
)
def test_invalid_offer_names_file_offer_and_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(CatalogError) as error:
        parse_catalog(minimal(**changes), "shop.yaml")
    message = str(error.value)
    assert message.startswith("shop.yaml: offers[0]")
    assert f": {field}: " in message


def test_missing_field_is_named() -> None:
    data = minimal()
    del data["offers"][0]["category"]
    with pytest.raises(CatalogError, match=r"offers\[0\] \(emmentaler-20\): category: is required"):
        parse_catalog(data, "shop.yaml")


def test_duplicate_ids_are_rejected() -> None:
    data = minimal()
    data["offers"].append(dict(data["offers"][0]))
    with pytest.raises(
        CatalogError, match=r"offers\[2\] \(emmentaler-20\): id: duplicate of offers\[0\]"
    ):
        parse_catalog(data, "shop.yaml")


def test_exactly_one_fallback_unless_configured() -> None:
    data = minimal()
    data["offers"][1]["fallback"] = False
    with pytest.raises(CatalogError, match="fallback: exactly one offer"):
        parse_catalog(data, "shop.yaml")
    catalog = parse_catalog(data, "shop.yaml", fallback_offer_id="emmentaler-20")
    assert catalog.fallback.offer_id == "emmentaler-20"
    with pytest.raises(CatalogError, match="EMMA_FALLBACK_OFFER"):
        parse_catalog(data, "shop.yaml", fallback_offer_id="nope")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CatalogError, match=r"missing\.yaml: cannot read"):
        load_catalog(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("offers: [\n")
    with pytest.raises(CatalogError, match=r"broken\.yaml: not valid YAML"):
        load_catalog(broken)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(minimal()))
    assert load_catalog(good).fallback.offer_id == "points"
