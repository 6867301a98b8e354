"""Trigger rules: a validated YAML file; every error names the rule and field it is about."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from emma.decision.domain import Channel
from emma.decision.policy import parse_duration

KINDS = (
    "geofence",
    "life_event",
    "anniversary",
    "replenishment",
    "viewed_not_bought",
    "negative_sentiment",
)
LIFE_EVENTS = ("moved", "married", "new_baby")
ANNIVERSARIES = ("birthday", "anniversary")
# Fields every rule may have, and the ones only some kinds take.
_COMMON = {
    "name",
    "kind",
    "channels",
    "offers",
    "categories",
    "store_offers",
    "window",
    "expires",
    "promotion",
    "enabled",
}
_KIND_FIELDS: Mapping[str, set[str]] = {
    "geofence": set(),
    "life_event": {"events"},
    "anniversary": {"events", "send_hour"},
    "replenishment": {"min_purchases", "lead"},
    "viewed_not_bought": {"after"},
    "negative_sentiment": {"threshold", "cooldown"},
}


class RulesError(ValueError):
    """The rules file is not valid; the message names the field (e.g. rules[2].window)."""


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    channels: tuple[Channel, ...]
    window: timedelta
    expires: timedelta
    offers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    store_offers: bool = False
    # False for gestures and service messages: a sentiment cool-down does not hold them back.
    promotion: bool = True
    events: tuple[str, ...] = ()
    send_hour: int = 9
    min_purchases: int = 3
    lead: timedelta = timedelta(days=1)
    after: timedelta = timedelta(hours=2)
    threshold: float = -0.4
    cooldown: timedelta = timedelta(days=7)


@dataclasses.dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]

    def of_kind(self, kind: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.kind == kind)

    def named(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)


def default_rules_path() -> Path:
    return Path(str(resources.files("emma.triggers").joinpath("rules.yaml")))


def _strings(raw: Any, path: str, allowed: tuple[str, ...] = ()) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) and v.strip() for v in raw):
        raise RulesError(f"{path}: expected a list of non-empty strings")
    for value in raw:
        if allowed and value not in allowed:
            raise RulesError(f"{path}: {value!r} is not one of {', '.join(allowed)}")
    return tuple(raw)


def _duration(raw: Any, path: str) -> timedelta:
    if not isinstance(raw, str):
        raise RulesError(f"{path}: expected a duration like 30m, 12h, 7d or 2w")
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise RulesError(f"{path}: {error}") from None


def _bool(raw: Any, path: str) -> bool:
    if not isinstance(raw, bool):
        raise RulesError(f"{path}: expected true or false")
    return raw


def _rule(raw: Any, path: str) -> Rule | None:
    if not isinstance(raw, dict):
        raise RulesError(f"{path}: expected a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f"{path}.name: must be a non-empty string")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RulesError(f"{path}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    unknown = sorted(set(raw) - _COMMON - _KIND_FIELDS[kind])
    if unknown:
        raise RulesError(f"{path}.{unknown[0]}: not a field of a {kind} rule")
    for required in ("channels", "window", "expires"):
        if required not in raw:
            raise RulesError(f"{path}.{required}: required")
    names = _strings(raw["channels"], f"{path}.channels", tuple(c.value for c in Channel))
    if not names:
        raise RulesError(f"{path}.channels: must name at least one channel")
    fields: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "channels": tuple(Channel(c) for c in names),
        "window": _duration(raw["window"], f"{path}.window"),
        "expires": _duration(raw["expires"], f"{path}.expires"),
    }
    for key in ("offers", "categories"):
        if key in raw:
            fields[key] = _strings(raw[key], f"{path}.{key}")
    for key in ("store_offers", "promotion"):
        if key in raw:
            fields[key] = _bool(raw[key], f"{path}.{key}")
    for key in ("lead", "after", "cooldown"):
        if key in raw:
            fields[key] = _duration(raw[key], f"{path}.{key}")
    if "events" in raw:
        allowed = LIFE_EVENTS if kind == "life_event" else ANNIVERSARIES
        fields["events"] = _strings(raw["events"], f"{path}.events", allowed)
    elif kind in ("life_event", "anniversary"):
        raise RulesError(f"{path}.events: required for a {kind} rule")
    if "send_hour" in raw:
        hour = raw["send_hour"]
        if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
            raise RulesError(f"{path}.send_hour: expected an hour 0..23")
        fields["send_hour"] = hour
    if "min_purchases" in raw:
        count = raw["min_purchases"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 2:
            raise RulesError(f"{path}.min_purchases: expected an integer >= 2")
        fields["min_purchases"] = count
    if "threshold" in raw:
        threshold = raw["threshold"]
        if not isinstance(threshold, int | float) or not -1 <= threshold <= 1:
            raise RulesError(f"{path}.threshold: expected a sentiment in [-1, 1]")
        fields["threshold"] = float(threshold)
    if not _bool(raw.get("enabled", True), f"{path}.enabled"):
        return None
    return Rule(**fields)


def parse_rules(data: Any, source: str = "rules") -> Rules:
    """Validated rules from parsed YAML; raises RulesError naming the bad field."""
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RulesError(f"{source}: expected a mapping with a `rules` list")
    unknown = sorted(set(data) - {"rules"})
    if unknown:
        raise RulesError(f"{source}: unknown top-level field {unknown[0]!r}")
    rules, names = [], set()
    for index, raw in enumerate(data["rules"]):
        rule = _rule(raw, f"rules[{index}]")
        if rule is None:
            continue
        if rule.name in names:
            raise RulesError(f"rules[{index}].name: {rule.name!r} is used twice")
        names.add(rule.name)
        rules.append(rule)
    return Rules(tuple(rules))


def load_rules(path: Path) -> Rules:
    """The rules of a YAML file; raises RulesError (a ValueError) naming file and field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RulesError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise RulesError(f"{path}: not valid YAML: {error}") from None
    try:
        return parse_rules(data, str(path))
    except RulesError as error:
        raise RulesError(f"{path}: {error}") from None
