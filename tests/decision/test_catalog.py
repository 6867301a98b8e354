"""Catalog loading: the demo catalog is valid; errors name the file, the offer and the field."""

from __future__ import annotations

import datetime as dt
import json
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
            dayparts=["morning"],
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
        ({"channels": ["fax"]}, "channels[0]"),
        ({"channels": []}, "channels"),
        ({"title": ""}, "title"),
        ({"seasons": ["sommer"]}, "seasons[0]"),
        ({"dayparts": ["brunch"]}, "dayparts[0]"),
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
    assert len(error.value.problems) == 1


def test_missing_field_is_named() -> None:
    data = minimal()
    del data["offers"][0]["category"]
    with pytest.raises(
        CatalogError, match=r"offers\[0\] \(offer_id emmentaler-20\): category: is required"
    ):
        parse_catalog(data, "shop.yaml")


def test_duplicate_ids_are_rejected() -> None:
    data = minimal()
    data["offers"].append(dict(data["offers"][0]))
    with pytest.raises(
        CatalogError, match=r"offers\[2\] \(offer_id emmentaler-20\): id: duplicate of offers\[0\]"
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


def test_the_published_schema_is_draft_2020_12_and_accepts_the_demo_catalog() -> None:
    import jsonschema

    from emma.decision.catalog import SCHEMA_PATH, schema

    assert SCHEMA_PATH.name == "catalog_schema.json" and SCHEMA_PATH.is_file()
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema())
    demo = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))
    # What an editor or CI would do with the schema alone (YAML dates as ISO text).
    as_json = json.loads(json.dumps(demo, default=str))
    jsonschema.Draft202012Validator(schema()).validate(as_json)


def test_schema_vocabularies_match_the_code() -> None:
    from emma.context.clock import DAYPART_NAMES
    from emma.decision.catalog import schema

    defs = schema()["$defs"]
    assert defs["channel"]["enum"] == [c.value for c in Channel]
    assert defs["offer"]["properties"]["dayparts"]["items"]["enum"] == list(DAYPART_NAMES)
    assert defs["offer"]["properties"]["consent"]["enum"] == [p.value for p in Purpose]


def test_every_problem_is_reported_at_once() -> None:
    data = minimal(channels=["fax"], colour="red")
    data["offers"].append({"id": "x", "title": "X", "channels": ["push"]})
    with pytest.raises(CatalogError) as error:
        parse_catalog(data, "shop.yaml")
    assert error.value.lines == [
        "shop.yaml: offers[0] (offer_id emmentaler-20): channels[0]: unknown value 'fax', "
        "expected one of ['in_app', 'push', 'email', 'sms', 'web', 'receipt', "
        "'cashier_prompt', 'store_screen']",
        "shop.yaml: offers[0] (offer_id emmentaler-20): colour: unknown field, expected one of "
        "['category', 'channels', 'consent', 'dayparts', 'description', 'discount_pct', "
        "'fallback', 'features', 'id', 'payload', 'priority', 'products', 'regions', 'seasons', "
        "'segments', 'stores', 'title', 'valid_from', 'valid_until', 'value']",
        "shop.yaml: offers[2] (offer_id x): category: is required",
    ]


def test_segments_regions_and_contact_policy_are_loaded() -> None:
    data = minimal(segments=["loyal"], regions=["DE-BY", "AT"])
    data["segments"] = {"loyal": {"all": [{"field": "rfm.frequency", "gte": 5}]}}
    data["contact_policy"] = {
        "caps": [
            {"name": "push-daily", "channels": ["push"], "max": 1, "window": "1d"},
            {"name": "all-weekly", "max": 3, "window": "1w"},
        ],
        "dismissal_cooldown": {"offer": "14d", "category": "12h"},
        "quiet_hours": {"channels": ["push", "sms"], "horizon": "36h"},
    }
    catalog = parse_catalog(data, "shop.yaml")
    offer = catalog.offers[0]
    assert offer.segments == ("loyal",)
    assert offer.regions == {"DE-BY", "AT"}
    assert set(catalog.segments) == {"loyal"}
    policy = catalog.policy
    assert [(c.name, c.limit, c.window, c.channels) for c in policy.caps] == [
        ("push-daily", 1, dt.timedelta(days=1), {Channel.PUSH}),
        ("all-weekly", 3, dt.timedelta(weeks=1), frozenset()),
    ]
    assert policy.offer_cooldown == dt.timedelta(days=14)
    assert policy.category_cooldown == dt.timedelta(hours=12)
    assert policy.quiet_channels == {Channel.PUSH, Channel.SMS}
    assert policy.quiet_horizon == dt.timedelta(hours=36)
    assert policy.capped(Channel.EMAIL) and policy.capped(Channel.PUSH)
    assert [c.name for c in policy.caps_for(Channel.PUSH)] == ["push-daily", "all-weekly"]


def test_without_a_contact_policy_only_push_is_quiet_and_nothing_is_capped() -> None:
    policy = parse_catalog(minimal(), "shop.yaml").policy
    assert policy.caps == ()
    assert policy.quiet_channels == {Channel.PUSH}
    assert policy.offer_cooldown is None and policy.category_cooldown is None


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (
            {"offer": {"segments": ["loyal"]}},
            "shop.yaml: offers[0] (offer_id emmentaler-20): segments[0]: unknown segment 'loyal'",
        ),
        (
            {"offer": {"valid_from": "2026-02-30"}},
            "shop.yaml: offers[0] (offer_id emmentaler-20): valid_from: '2026-02-30' is not "
            "a date of the calendar",
        ),
        (
            {"offer": {"valid_from": "2026-03-01", "valid_until": "2026-02-28"}},
            "shop.yaml: offers[0] (offer_id emmentaler-20): valid_until: 2026-02-28 is before "
            "valid_from 2026-03-01",
        ),
        (
            {"segments": {"loyal": {"field": "rfm.freq", "gte": 1}}},
            "shop.yaml: segments.loyal: field: unknown field 'rfm.freq'",
        ),
        (
            {"segments": {"loyal": {"field": "liked_categories", "gte": 1}}},
            "shop.yaml: segments.loyal: gte: not a comparison for set field 'liked_categories'",
        ),
        (
            {"segments": {"loyal": {"field": "rfm.frequency", "eq": "many"}}},
            "shop.yaml: segments.loyal: eq: must be a number, got 'many'",
        ),
        (
            {"segments": {"a": {"segment": "b"}, "b": {"not": {"segment": "a"}}}},
            "shop.yaml: segments.b: not.segment: segments refer to each other in a cycle: "
            "a -> b -> a",
        ),
        (
            {"segments": {"a": {"all": [{"field": "sentiment", "gt": 0}, {"segment": "zz"}]}}},
            "shop.yaml: segments.a: all[1].segment: unknown segment 'zz'",
        ),
        (
            {"segments": {"a": {"field": "sentiment", "gt": 0, "any": []}}},
            "shop.yaml: segments.a: any: must not be empty",
        ),
        (
            {"fallback": {"seasons": ["winter"]}},
            "shop.yaml: offers[1] (offer_id points): seasons: the fallback offer is answered when "
            "nothing else is eligible, so it must not be restricted",
        ),
        (
            {
                "contact_policy": {
                    "caps": [
                        {"name": "a", "max": 1, "window": "1d"},
                        {"name": "a", "max": 2, "window": "7d"},
                    ]
                }
            },
            "shop.yaml: contact_policy: caps[1].name: duplicate of caps[0]",
        ),
        (
            {"contact_policy": {"quiet_hours": {"horizon": "8d"}}},
            "shop.yaml: contact_policy: quiet_hours.horizon: must be at most 7d",
        ),
        (
            {"contact_policy": {"caps": [{"name": "a", "max": 1, "window": "daily"}]}},
            "shop.yaml: contact_policy: caps[0].window: must be a duration like 30m, 12h, 7d or "
            "2w, got 'daily'",
        ),
        (
            {"offer": {"regions": ["bavaria"]}},
            "shop.yaml: offers[0] (offer_id emmentaler-20): regions[0]: must be a country or "
            "subdivision code like DE or DE-BY, got 'bavaria'",
        ),
    ],
)
def test_cross_checks_name_the_place(changes: dict[str, Any], line: str) -> None:
    data = minimal(**changes.get("offer", {}))
    data["offers"][1].update(changes.get("fallback", {}))
    for section in ("segments", "contact_policy"):
        if section in changes:
            data[section] = changes[section]
    with pytest.raises(CatalogError) as error:
        parse_catalog(data, "shop.yaml")
    assert any(problem.startswith(line) for problem in error.value.lines), error.value.lines


# --- seasons of the context service's own season file ------------------------------------------

CUSTOM_SEASONS = """\
seasons:
  - name: oktoberfest        # Munich: from the Saturday after 15 September, 16 days
    start: sat after 09-15
    days: 16
  - name: christmas
    start: 12-24
    end: 12-26
"""


@pytest.fixture
def season_file(tmp_path: Path) -> Path:
    path = tmp_path / "seasons.yaml"
    path.write_text(CUSTOM_SEASONS, encoding="utf-8")
    return path


def test_seasons_of_the_configured_season_file_are_accepted(
    season_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMMA_RETAIL_SEASONS", str(season_file))
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(minimal(seasons=["oktoberfest", "autumn"])))
    offer = load_catalog(catalog_path).offers[0]
    assert offer.seasons == {"oktoberfest", "autumn"}


def test_a_season_file_can_be_passed_instead_of_the_environment(season_file: Path) -> None:
    catalog = parse_catalog(
        minimal(seasons=["oktoberfest"]), "shop.yaml", retail_seasons_path=season_file
    )
    assert catalog.offers[0].seasons == {"oktoberfest"}


def test_without_the_season_file_a_custom_season_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EMMA_RETAIL_SEASONS", raising=False)
    with pytest.raises(CatalogError) as error:
        parse_catalog(minimal(seasons=["oktoberfest"]), "shop.yaml")
    assert "offers[0] (offer_id emmentaler-20): seasons[0]: unknown season 'oktoberfest'" in str(
        error.value
    )
    assert "the bundled season file" in str(error.value)


def test_a_season_the_configured_file_lacks_is_rejected_naming_the_file(
    season_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file replaces the bundled seasons: the context service will never report advent.
    monkeypatch.setenv("EMMA_RETAIL_SEASONS", str(season_file))
    with pytest.raises(CatalogError) as error:
        parse_catalog(minimal(seasons=["oktoberfest", "advent", "oktoberfst"]), "shop.yaml")
    problems = error.value.problems
    assert [problem.field for problem in problems] == ["seasons[1]", "seasons[2]"]
    assert f"EMMA_RETAIL_SEASONS={season_file}" in problems[0].problem
    assert "'oktoberfest', 'christmas'" in problems[0].problem


def test_an_invalid_season_file_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "seasons.yaml"
    broken.write_text("seasons:\n  - name: oktoberfest\n    start: 3rd sat of spt\n    days: 16\n")
    with pytest.raises(CatalogError) as error:
        parse_catalog(minimal(), "shop.yaml", retail_seasons_path=broken)
    assert f"shop.yaml: seasons: cannot check them against {broken}" in str(error.value)
    assert "unknown month" in str(error.value)
