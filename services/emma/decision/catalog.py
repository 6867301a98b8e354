"""The offer catalog: a YAML file marketers edit, validated against its JSON Schema and loaded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from emma.context.calendar import RETAIL_SEASON_NAMES, SEASON_NAMES
from emma.context.clock import DAYPART_NAMES
from emma.context.seasons import RetailSeasonError, load_retail_seasons
from emma.decision.domain import Channel, Purpose
from emma.decision.policy import DEFAULT_POLICY, Cap, ContactPolicy, parse_duration
from emma.decision.segments import Rule, compile_segments, segment_errors

# The published schema, shipped in the package: editors and CI can validate against it too.
SCHEMA_PATH = Path(__file__).resolve().with_name("catalog_schema.json")
# Season names the context service reports; a typo in the catalog must not silently
# make an offer never eligible, so unknown names are rejected. The retail seasons are
# those of the context service's season file: a deployment that defines its own
# (EMMA_RETAIL_SEASONS) names them in its offers, so the catalog reads the same file.
RETAIL_SEASONS_ENV = "EMMA_RETAIL_SEASONS"
DAYPARTS = frozenset(DAYPART_NAMES)
MAX_QUIET_HORIZON = dt.timedelta(days=7)
# Restrictions the fallback must not have: it is answered when filters leave nothing, so
# they would never be applied to it.
_FALLBACK_UNRESTRICTED = (
    "valid_from",
    "valid_until",
    "seasons",
    "dayparts",
    "stores",
    "regions",
    "segments",
)


# Offers of a category under this prefix (e.g. "moment.birthday") are gestures for moments
# only: a birthday card or a service-recovery voucher is never a till's or an app's pick.
MOMENT_CATEGORY_PREFIX = "moment."


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a catalog: where (an offer or section), which field, and what."""

    where: str
    field: str
    problem: str

    def render(self, source: str) -> str:
        return ": ".join(part for part in (source, self.where, self.field, self.problem) if part)


class CatalogError(ValueError):
    """The catalog is invalid; each line names the file, the offer and the field."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(self.lines))

    @property
    def lines(self) -> list[str]:
        return [problem.render(self.source) for problem in self.problems]


@dataclasses.dataclass(frozen=True)
class Offer:
    offer_id: str
    title: str
    category: str
    channels: tuple[Channel, ...]
    description: str = ""
    products: tuple[str, ...] = ()
    # The offer's worth to the customer in the catalog currency, e.g. 1.50 (EUR off).
    value: float = 0.0
    discount_pct: float = 0.0
    # Inclusive local dates; None is open-ended.
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    # Meteorological and/or retail seasons; empty means all year.
    seasons: frozenset[str] = frozenset()
    dayparts: frozenset[str] = frozenset()
    # Store ids; empty means every store (and no store at all).
    stores: frozenset[str] = frozenset()
    # Countries ("DE") or subdivisions ("DE-BY"); empty means everywhere.
    regions: frozenset[str] = frozenset()
    # Segment names; the customer must be in one of them. Empty means everyone.
    segments: tuple[str, ...] = ()
    # The consent purpose the offer needs on its channel beyond the channel's own rules.
    consent: Purpose | None = None
    # Higher first when actions must be cut to the model's limit or a baseline is needed.
    priority: int = 0
    features: Mapping[str, float | str] = dataclasses.field(default_factory=dict)
    payload: Mapping[str, str] = dataclasses.field(default_factory=dict)
    fallback: bool = False

    @property
    def moments_only(self) -> bool:
        """Whether the offer is reserved for moments (MOMENT_CATEGORY_PREFIX)."""
        return self.category.startswith(MOMENT_CATEGORY_PREFIX)


@dataclasses.dataclass(frozen=True)
class Catalog:
    offers: tuple[Offer, ...]
    fallback: Offer
    source: str = ""
    segments: Mapping[str, Rule] = dataclasses.field(default_factory=dict)
    policy: ContactPolicy = DEFAULT_POLICY

    @functools.cached_property
    def candidates(self) -> tuple[Offer, ...]:
        """Offers the model chooses among; the fallback is the safety net, not a candidate.
        Worked out once per catalog: a decision asks twice."""
        return tuple(offer for offer in self.offers if offer is not self.fallback)

    @functools.cached_property
    def everyday_candidates(self) -> tuple[Offer, ...]:
        """The candidates of a decision made for no moment: none of the offers reserved for
        moments. Worked out once per catalog, and the same tuple every time, which lets
        per-decision caches know the candidates by identity."""
        return tuple(offer for offer in self.candidates if not offer.moments_only)

    def get(self, offer_id: str) -> Offer | None:
        return next((offer for offer in self.offers if offer.offer_id == offer_id), None)


@functools.cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def _plain(value: object) -> object:
    """YAML dates as ISO strings, so the schema (a JSON document) sees what the file says."""
    if isinstance(value, dt.date):  # a datetime too: its ISO form then fails the date pattern
        return value.isoformat()
    if isinstance(value, dict):
        return {key if isinstance(key, str) else str(key): _plain(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _path(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(data: Any, path: Sequence[str | int]) -> tuple[str, str]:
    """(where, field) for a path: offers are named by index and id, other sections by name."""
    if len(path) >= 2 and path[0] == "offers" and isinstance(path[1], int):
        index = path[1]
        offers = data.get("offers") if isinstance(data, dict) else None
        raw = offers[index] if isinstance(offers, list) and index < len(offers) else None
        offer_id = raw.get("id") if isinstance(raw, dict) else None
        where = f"offers[{index}]" + (
            f" (offer_id {offer_id})" if isinstance(offer_id, str) else ""
        )
        return where, _path(path[2:])
    if len(path) >= 2 and path[0] == "segments":
        return _path(path[:2]), _path(path[2:])
    if path:
        return str(path[0]), _path(path[1:])
    return "", ""


_TYPE_NAMES = {
    "array": "a list",
    "object": "a mapping",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
}
_PATTERN_HINTS = {
    "^[a-z0-9][a-z0-9_.-]{0,63}$": "must be lower-case letters, digits, '_', '-' or '.' (<= 64)",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "must be an ISO date like 2026-12-24",
    "^[1-9][0-9]*[smhdw]$": "must be a duration like 30m, 12h, 7d or 2w",
    "^[A-Z]{2}(-[A-Z0-9]{1,3})?$": "must be a country or subdivision code like DE or DE-BY",
}


def _order(path: Sequence[str | int]) -> list[tuple[int, int | str]]:
    return [(0, p) if isinstance(p, int) else (1, p) for p in path]


def _schema_problems(data: Any) -> list[Problem]:
    """Schema violations in file order (offers by index, then field), in marketers' words."""
    found: list[tuple[list[tuple[int, int | str]], Problem]] = []

    def add(path: Sequence[str | int], problem: str) -> None:
        found.append((_order(path), Problem(*_locate(data, path), problem)))

    for error in _validator().iter_errors(data):
        path = list(error.absolute_path)
        kind, expected, instance = error.validator, error.validator_value, error.instance
        if kind == "required":
            for name in expected:
                if isinstance(instance, dict) and name not in instance:
                    add([*path, name], "is required")
        elif kind == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            for name in sorted(set(instance) - set(allowed)):
                add([*path, name], f"unknown field, expected one of {allowed}")
        else:
            add(path, _problem(kind, expected, instance, error.message))
    return [problem for _, problem in sorted(found, key=lambda item: item[0])]


def _problem(kind: str, expected: Any, instance: Any, message: str) -> str:
    if kind == "enum":
        return f"unknown value {instance!r}, expected one of {expected}"
    if kind == "type":
        names = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"must be {wanted}, got {instance!r}"
    if kind == "pattern":
        return f"{_PATTERN_HINTS.get(expected, f'must match {expected}')}, got {instance!r}"
    if kind in {"minimum", "maximum"}:
        return f"must be {'>=' if kind == 'minimum' else '<='} {expected}, got {instance!r}"
    if kind in {"minItems", "minProperties", "minLength"}:
        return "must not be empty"
    if kind == "uniqueItems":
        return "must not name a value twice"
    return message


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def retail_season_names(path: Path | None = None) -> tuple[str, ...]:
    """The retail seasons of the season file at `path`, else of the file EMMA_RETAIL_SEASONS
    names (the context service's setting), else the bundled ones.

    Raises RetailSeasonError naming the file when it is unreadable or invalid.
    """
    if path is None:
        configured = os.environ.get(RETAIL_SEASONS_ENV, "").strip()
        if not configured:
            return RETAIL_SEASON_NAMES
        path = Path(configured)
    return load_retail_seasons(path).names


def _season_source(path: Path | None) -> str:
    if path is not None:
        return str(path)
    configured = os.environ.get(RETAIL_SEASONS_ENV, "").strip()
    return f"{RETAIL_SEASONS_ENV}={configured}" if configured else "the bundled season file"


def _offer_problems(
    index: int, raw: Mapping[str, Any], data: Any, retail_seasons: Collection[str], source: str
) -> Iterator[Problem]:
    where, _ = _locate(data, ["offers", index])
    dates = {}
    for field in ("valid_from", "valid_until"):
        try:
            dates[field] = _date(raw.get(field))
        except ValueError:
            yield Problem(where, field, f"{raw[field]!r} is not a date of the calendar")
    for i, name in enumerate(raw.get("seasons", ())):
        if name not in SEASON_NAMES and name not in retail_seasons:
            yield Problem(
                where,
                f"seasons[{i}]",
                f"unknown season {name!r}, expected one of {[*SEASON_NAMES, *retail_seasons]}"
                f" (retail seasons of {source})",
            )
    start, end = dates.get("valid_from"), dates.get("valid_until")
    if start and end and end < start:
        yield Problem(where, "valid_until", f"{end} is before valid_from {start}")
    known = data.get("segments") or {}
    for i, name in enumerate(raw.get("segments", ())):
        if name not in known:
            yield Problem(where, f"segments[{i}]", f"unknown segment {name!r}")


def _fallback_problems(offers: list[Any], fallback_offer_id: str, data: Any) -> Iterator[Problem]:
    if fallback_offer_id:
        chosen = [i for i, o in enumerate(offers) if o.get("id") == fallback_offer_id]
        if not chosen:
            yield Problem(
                "fallback", "", f"offer {fallback_offer_id!r} (EMMA_FALLBACK_OFFER) is not in it"
            )
    else:
        chosen = [i for i, o in enumerate(offers) if o.get("fallback") is True]
        if len(chosen) != 1:
            yield Problem(
                "fallback",
                "",
                "exactly one offer must have `fallback: true` (or set EMMA_FALLBACK_OFFER), "
                f"found {len(chosen)}",
            )
    for index in chosen:
        for field in _FALLBACK_UNRESTRICTED:
            if offers[index].get(field):
                yield Problem(
                    _locate(data, ["offers", index])[0],
                    field,
                    "the fallback offer is answered when nothing else is eligible, "
                    "so it must not be restricted",
                )


def _policy_problems(raw: Mapping[str, Any]) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, cap in enumerate(raw.get("caps", ())):
        if cap["name"] in seen:
            yield Problem(
                "contact_policy", f"caps[{i}].name", f"duplicate of caps[{seen[cap['name']]}]"
            )
        seen.setdefault(cap["name"], i)
    horizon = raw.get("quiet_hours", {}).get("horizon")
    if horizon and parse_duration(horizon) > MAX_QUIET_HORIZON:
        yield Problem("contact_policy", "quiet_hours.horizon", "must be at most 7d")


def catalog_problems(
    data: object, fallback_offer_id: str = "", retail_seasons_path: Path | None = None
) -> list[Problem]:
    """Everything wrong with parsed YAML: schema violations first, then cross-field checks.

    Offers' seasons are checked against the retail season file at `retail_seasons_path`,
    else the one EMMA_RETAIL_SEASONS names, else the bundled one (retail_season_names).
    """
    data = _plain(data)
    if not isinstance(data, dict):
        return [Problem("", "", "must be a mapping with a list `offers`")]
    problems = _schema_problems(data)
    if problems:
        # Cross-field checks assume the shapes the schema guarantees.
        return problems
    offers = data["offers"]
    source = _season_source(retail_seasons_path)
    try:
        # In file order, as the error names them; a dozen names need no set.
        retail_seasons: Collection[str] = retail_season_names(retail_seasons_path)
    except RetailSeasonError as season_error:
        problems.append(
            Problem("", "seasons", f"cannot check them against {source}: {season_error}")
        )
        retail_seasons = RETAIL_SEASON_NAMES
    seen: dict[str, int] = {}
    for index, raw in enumerate(offers):
        if raw["id"] in seen:
            problems.append(
                Problem(
                    _locate(data, ["offers", index])[0],
                    "id",
                    f"duplicate of offers[{seen[raw['id']]}]",
                )
            )
        seen.setdefault(raw["id"], index)
        problems.extend(_offer_problems(index, raw, data, retail_seasons, source))
    messages = set()
    for error in segment_errors(data.get("segments") or {}):
        if str(error) not in messages:
            messages.add(str(error))
            parts = error.path.split(".", 2)
            problems.append(Problem(".".join(parts[:2]), ".".join(parts[2:]), error.problem))
    problems.extend(_fallback_problems(offers, fallback_offer_id, data))
    problems.extend(_policy_problems(data.get("contact_policy") or {}))
    return problems


def _offer(raw: Mapping[str, Any]) -> Offer:
    return Offer(
        offer_id=raw["id"],
        title=raw["title"].strip(),
        description=raw.get("description", "").strip(),
        category=raw["category"].strip(),
        products=tuple(raw.get("products", ())),
        value=float(raw.get("value", 0.0)),
        discount_pct=float(raw.get("discount_pct", 0.0)),
        valid_from=_date(raw.get("valid_from")),
        valid_until=_date(raw.get("valid_until")),
        seasons=frozenset(raw.get("seasons", ())),
        dayparts=frozenset(raw.get("dayparts", ())),
        stores=frozenset(raw.get("stores", ())),
        regions=frozenset(raw.get("regions", ())),
        segments=tuple(raw.get("segments", ())),
        consent=Purpose(raw["consent"]) if "consent" in raw else None,
        channels=tuple(Channel(c) for c in raw["channels"]),
        priority=int(raw.get("priority", 0)),
        features={
            key: float(value) if isinstance(value, int | float) else value
            for key, value in raw.get("features", {}).items()
        },
        payload={key: _text(value) for key, value in raw.get("payload", {}).items()},
        fallback=bool(raw.get("fallback", False)),
    )


def _text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _policy(raw: Mapping[str, Any]) -> ContactPolicy:
    cooldown = raw.get("dismissal_cooldown", {})
    quiet = raw.get("quiet_hours", {})
    return ContactPolicy(
        caps=tuple(
            Cap(
                name=cap["name"],
                limit=int(cap["max"]),
                window=parse_duration(cap["window"]),
                channels=frozenset(Channel(c) for c in cap.get("channels", ())),
            )
            for cap in raw.get("caps", ())
        ),
        offer_cooldown=parse_duration(cooldown["offer"]) if "offer" in cooldown else None,
        category_cooldown=(
            parse_duration(cooldown["category"]) if "category" in cooldown else None
        ),
        quiet_channels=(
            frozenset(Channel(c) for c in quiet["channels"])
            if "channels" in quiet
            else DEFAULT_POLICY.quiet_channels
        ),
        quiet_horizon=(
            parse_duration(quiet["horizon"]) if "horizon" in quiet else DEFAULT_POLICY.quiet_horizon
        ),
    )


def parse_catalog(
    data: object,
    source: str,
    fallback_offer_id: str = "",
    retail_seasons_path: Path | None = None,
) -> Catalog:
    """Validates parsed YAML; `fallback_offer_id` (config) overrides the offers' `fallback` flag;
    `retail_seasons_path` as for catalog_problems."""
    problems = catalog_problems(data, fallback_offer_id, retail_seasons_path)
    if problems:
        raise CatalogError(source, problems)
    plain: dict[str, Any] = _plain(data)  # type: ignore[assignment]
    offers = tuple(_offer(raw) for raw in plain["offers"])
    if fallback_offer_id:
        fallback = next(o for o in offers if o.offer_id == fallback_offer_id)
    else:
        fallback = next(o for o in offers if o.fallback)
    return Catalog(
        offers=offers,
        fallback=fallback,
        source=source,
        segments=compile_segments(plain.get("segments") or {}),
        policy=_policy(plain.get("contact_policy") or {}),
    )


def read_yaml(path: Path) -> object:
    """The file's YAML; raises CatalogError naming the file when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CatalogError(str(path), [Problem("", "", f"cannot read: {reason}")]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = Problem("", "", f"not valid YAML: {_yaml_error(error)}")
        raise CatalogError(str(path), [problem]) from None


def _yaml_error(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message on one line: where, then what."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1} column {mark.column + 1}: {problem}"


def load_catalog(
    path: Path, fallback_offer_id: str = "", retail_seasons_path: Path | None = None
) -> Catalog:
    """Reads and validates the catalog file; raises CatalogError naming file, offer and field."""
    return parse_catalog(read_yaml(path), str(path), fallback_offer_id, retail_seasons_path)
