"""The rules file: the shipped one loads; every mistake names its rule and field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from emma.triggers.rules import RulesError, default_rules_path, load_rules, parse_rules

GOOD: dict[str, Any] = {
    "name": "g",
    "kind": "geofence",
    "channels": ["push"],
    "window": "1d",
    "expires": "2h",
}


def test_the_shipped_rules_cover_every_kind() -> None:
    rules = load_rules(default_rules_path())
    assert {rule.kind for rule in rules.rules} == {
        "geofence",
        "life_event",
        "anniversary",
        "replenishment",
        "viewed_not_bought",
        "negative_sentiment",
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "lottery"}, "rules[1].kind"),
        ({"window": "soon"}, "rules[1].window"),
        ({"channels": ["pigeon"]}, "rules[1].channels"),
        ({"threshold": -0.5}, "rules[1].threshold"),
        ({"kind": "life_event"}, "rules[1].events"),
        ({"kind": "life_event", "events": ["divorce"]}, "rules[1].events"),
        ({"name": "g"}, "rules[1].name"),
        ({"expires": None}, "rules[1].expires"),
    ],
)
def test_a_bad_rule_names_the_field(change: dict[str, Any], field: str) -> None:
    bad = {**GOOD, "name": "h", **change}
    with pytest.raises(RulesError, match="^" + re.escape(field) + ":"):
        parse_rules({"rules": [GOOD, bad]})


def test_a_broken_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: x, kind: geofence}]")
    with pytest.raises(RulesError, match=r"rules.yaml: rules\[0\].channels: required"):
        load_rules(path)
