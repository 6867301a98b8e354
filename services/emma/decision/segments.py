"""Segments: a small rule language over profile fields, compiled once and evaluated per decision.

A rule is one of
  {all: [rule, ...]}   every rule holds          {any: [rule, ...]}   some rule holds
  {not: rule}          the rule does not hold    {segment: name}      another segment's rule
  {field: NAME, OP: VALUE, ...}                  every comparison on the field holds
Fields and the comparisons they allow are listed in FIELDS (and `category_affinity.<category>`,
`channel_responsiveness.<channel>`); anything else is rejected when the catalog loads. The
language has no loops, calls or attribute access, so a catalog cannot run code.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeGuard

from emma.decision.domain import Channel, CustomerView


class Kind(enum.Enum):
    NUMBER = "number"
    TEXT = "text"
    SET = "set"


Getter = Callable[[CustomerView], Any]

FIELDS: Mapping[str, tuple[Kind, Getter]] = {
    "rfm.recency_days": (Kind.NUMBER, lambda v: v.days_since_purchase),
    "rfm.frequency": (Kind.NUMBER, lambda v: float(v.purchase_count)),
    "rfm.monetary": (Kind.NUMBER, lambda v: v.total_spend),
    "sentiment": (Kind.NUMBER, lambda v: v.sentiment),
    "segments": (Kind.SET, lambda v: frozenset(v.segments)),
    "liked_categories": (Kind.SET, lambda v: v.liked_categories),
    "liked_products": (Kind.SET, lambda v: v.liked_products),
    "disliked_categories": (Kind.SET, lambda v: v.disliked_categories),
    "disliked_products": (Kind.SET, lambda v: v.disliked_products),
    "home_store": (Kind.TEXT, lambda v: v.home_store_id),
}
AFFINITY = "category_affinity."
RESPONSIVENESS = "channel_responsiveness."
OPERATORS: Mapping[Kind, frozenset[str]] = {
    Kind.NUMBER: frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "exists"}),
    Kind.TEXT: frozenset({"eq", "ne", "in"}),
    Kind.SET: frozenset({"contains", "contains_any", "empty"}),
}
COMBINATORS = ("all", "any", "not", "segment")
MAX_DEPTH = 8


class Rule:
    def matches(self, view: CustomerView) -> bool:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class All(Rule):
    rules: tuple[Rule, ...]

    def matches(self, view: CustomerView) -> bool:
        return all(rule.matches(view) for rule in self.rules)


@dataclasses.dataclass(frozen=True)
class Any_(Rule):
    rules: tuple[Rule, ...]

    def matches(self, view: CustomerView) -> bool:
        return any(rule.matches(view) for rule in self.rules)


@dataclasses.dataclass(frozen=True)
class Not(Rule):
    rule: Rule

    def matches(self, view: CustomerView) -> bool:
        return not self.rule.matches(view)


@dataclasses.dataclass(frozen=True)
class Test(Rule):
    """Comparisons on one field; a number the profile does not have fails every comparison."""

    field: str
    getter: Getter
    checks: tuple[tuple[str, Any], ...]

    def matches(self, view: CustomerView) -> bool:
        value = self.getter(view)
        return all(_check(op, value, expected) for op, expected in self.checks)


def _check(op: str, value: Any, expected: Any) -> bool:
    if op == "exists":
        return (value is not None) is expected
    if op == "empty":
        return (not value) is expected
    if op == "contains":
        return bool(expected in value)
    if op == "contains_any":
        return not bool(value.isdisjoint(expected))
    if op == "in":
        return bool(value in expected)
    if value is None:
        return False
    return bool(_COMPARISONS[op](value, expected))


_COMPARISONS: Mapping[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _affinity(category: str) -> Getter:
    return lambda v: next((score for key, score in v.category_affinities if key == category), 0.0)


def _responsiveness(channel: Channel) -> Getter:
    return lambda v: v.channel_responsiveness.get(channel, 0.0)


def field_kind(name: str) -> tuple[Kind, Getter] | None:
    """The kind and reader of a field name, or None when the language does not know it."""
    if name in FIELDS:
        return FIELDS[name]
    if name.startswith(AFFINITY) and len(name) > len(AFFINITY):
        return Kind.NUMBER, _affinity(name[len(AFFINITY) :])
    if name.startswith(RESPONSIVENESS):
        channel = name[len(RESPONSIVENESS) :]
        if channel in {c.value for c in Channel}:
            return Kind.NUMBER, _responsiveness(Channel(channel))
    return None


class SegmentError(ValueError):
    """A rule is invalid; `path` names where, relative to the segment's rule."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _strings(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _operand(kind: Kind, op: str, value: object) -> Any:
    """Validates one comparison's operand; returns it in the form evaluation needs."""
    if op in {"exists", "empty"}:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind is Kind.NUMBER:
        if not _is_number(value):
            raise ValueError(f"must be a number, got {value!r}")
        return float(value)
    if op in {"in", "contains_any"}:
        if not _strings(value) or not value:
            raise ValueError("must be a non-empty list of strings")
        return frozenset(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value


class _Compiler:
    def __init__(self, raw: Mapping[str, object]) -> None:
        self.raw = raw
        self.done: dict[str, Rule] = {}
        self.active: list[str] = []

    def segment(self, name: str, path: str) -> Rule:
        if name in self.done:
            return self.done[name]
        if name in self.active:
            cycle = " -> ".join([*self.active[self.active.index(name) :], name])
            raise SegmentError(path, f"segments refer to each other in a cycle: {cycle}")
        if name not in self.raw:
            raise SegmentError(path, f"unknown segment {name!r}")
        self.active.append(name)
        rule = self.rule(self.raw[name], f"segments.{name}", 0)
        self.active.pop()
        self.done[name] = rule
        return rule

    def rule(self, raw: object, path: str, depth: int) -> Rule:
        if depth > MAX_DEPTH:
            raise SegmentError(path, f"rules nest deeper than {MAX_DEPTH} levels")
        if not isinstance(raw, dict) or not raw:
            raise SegmentError(path, "must be a mapping with one of all, any, not, segment, field")
        keys = set(raw)
        combinators = keys & set(COMBINATORS)
        if combinators:
            if len(keys) != 1:
                raise SegmentError(
                    path, f"{sorted(keys)}: a rule is exactly one of {list(COMBINATORS)} or a field"
                )
            (key,) = combinators
            value = raw[key]
            if key == "not":
                return Not(self.rule(value, f"{path}.not", depth + 1))
            if key == "segment":
                if not isinstance(value, str):
                    raise SegmentError(f"{path}.segment", "must be a segment name")
                return self.segment(value, f"{path}.segment")
            if not isinstance(value, list) or not value:
                raise SegmentError(f"{path}.{key}", "must be a non-empty list of rules")
            rules = tuple(
                self.rule(item, f"{path}.{key}[{i}]", depth + 1) for i, item in enumerate(value)
            )
            return All(rules) if key == "all" else Any_(rules)
        if "field" not in keys:
            raise SegmentError(
                path, f"{sorted(keys)}: expected one of {list(COMBINATORS)} or `field`"
            )
        return self.test(raw, path)

    def test(self, raw: Mapping[str, object], path: str) -> Test:
        name = raw["field"]
        if not isinstance(name, str):
            raise SegmentError(f"{path}.field", "must be a string")
        known = field_kind(name)
        if known is None:
            raise SegmentError(
                f"{path}.field",
                f"unknown field {name!r}, expected one of {sorted(FIELDS)}, "
                f"{AFFINITY}<category> or {RESPONSIVENESS}<channel>",
            )
        kind, getter = known
        checks = []
        for op, value in raw.items():
            if op == "field":
                continue
            if op not in OPERATORS[kind]:
                raise SegmentError(
                    f"{path}.{op}",
                    f"not a comparison for {kind.value} field {name!r}, "
                    f"expected one of {sorted(OPERATORS[kind])}",
                )
            try:
                checks.append((op, _operand(kind, op, value)))
            except ValueError as error:
                raise SegmentError(f"{path}.{op}", str(error)) from None
        if not checks:
            raise SegmentError(path, f"field {name!r} needs a comparison, e.g. gte: 1")
        return Test(name, getter, tuple(checks))


def compile_segments(raw: Mapping[str, object]) -> dict[str, Rule]:
    """Compiles every segment; raises SegmentError at the first problem (path included)."""
    compiler = _Compiler(raw)
    return {name: compiler.segment(name, f"segments.{name}") for name in raw}


def segment_errors(raw: Mapping[str, object]) -> Iterator[SegmentError]:
    """Every segment's first problem, so a catalog check lists them all at once."""
    for name in raw:
        try:
            _Compiler(raw).segment(name, f"segments.{name}")
        except SegmentError as error:
            yield error
