"""The offer catalog: a YAML file marketers edit, loaded and validated into immutable offers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from emma.context.calendar import RETAIL_SEASON_NAMES, SEASON_NAMES
from emma.context.clock import DAYPART_NAMES
from emma.decision.domain import Channel, Purpose

# Season names the context service reports; a typo in the catalog must not silently
# make an offer never eligible, so unknown names are rejected.
KNOWN_SEASONS = frozenset(SEASON_NAMES) | frozenset(RETAIL_SEASON_NAMES)
DAYPARTS = frozenset(DAYPART_NAMES)
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KNOWN_FIELDS = frozenset(
    {
        "id",
        "title",
        "description",
        "category",
        "products",
        "value",
        "discount_pct",
        "valid_from",
        "valid_until",
        "seasons",
        "dayparts",
        "stores",
        "consent",
        "channels",
        "priority",
        "features",
        "payload",
        "fallback",
    }
)


class CatalogError(ValueError):
    """The catalog is invalid; the message names the file, the offer and the field."""


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
    # The consent purpose the offer needs on its channel beyond the channel's own rules.
    consent: Purpose | None = None
    # Higher first when actions must be cut to the model's limit or a baseline is needed.
    priority: int = 0
    features: Mapping[str, float | str] = dataclasses.field(default_factory=dict)
    payload: Mapping[str, str] = dataclasses.field(default_factory=dict)
    fallback: bool = False


@dataclasses.dataclass(frozen=True)
class Catalog:
    offers: tuple[Offer, ...]
    fallback: Offer
    source: str = ""

    @property
    def candidates(self) -> tuple[Offer, ...]:
        """Offers the model chooses among; the fallback is the safety net, not a candidate."""
        return tuple(offer for offer in self.offers if offer is not self.fallback)

    def get(self, offer_id: str) -> Offer | None:
        return next((offer for offer in self.offers if offer.offer_id == offer_id), None)


class _Offers:
    """Reads one offer's fields, raising errors that say where the problem is."""

    def __init__(self, source: str, index: int, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        name = raw.get("id")
        self.where = f"{source}: offers[{index}]" + (f" ({name})" if isinstance(name, str) else "")

    def fail(self, field: str, problem: str) -> CatalogError:
        return CatalogError(f"{self.where}: {field}: {problem}")

    def text(self, field: str, *, required: bool = False) -> str:
        value = self.raw.get(field)
        if value is None:
            if required:
                raise self.fail(field, "is required")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(field, "must be a non-empty string" if required else "must be a string")
        return value.strip()

    def number(self, field: str, low: float, high: float) -> float:
        value = self.raw.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, f"must be a number, got {value!r}")
        if not math.isfinite(value) or not low <= value <= high:
            raise self.fail(field, f"must be in [{low:g}, {high:g}], got {value!r}")
        return float(value)

    def names(self, field: str, allowed: frozenset[str] | None = None) -> tuple[str, ...]:
        value = self.raw.get(field, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(field, "must be a list of non-empty strings")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(field, f"unknown {unknown}, expected some of {sorted(allowed)}")
        return tuple(dict.fromkeys(value))

    def date(self, field: str) -> dt.date | None:
        value = self.raw.get(field)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(field, f"must be an ISO date like 2026-12-24, got {value!r}")

    def mapping(self, field: str) -> Mapping[str, Any]:
        value = self.raw.get(field, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
            raise self.fail(field, "must be a mapping with string keys")
        return value


def _parse_offer(source: str, index: int, raw: object) -> Offer:
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: offers[{index}]: must be a mapping")
    reader = _Offers(source, index, raw)
    unknown = sorted(set(raw) - _KNOWN_FIELDS)
    if unknown:
        raise reader.fail(unknown[0], f"unknown field, expected one of {sorted(_KNOWN_FIELDS)}")
    offer_id = reader.text("id", required=True)
    if not _ID.match(offer_id):
        raise reader.fail("id", "must be lower-case letters, digits, '_', '-' or '.' (<= 64)")
    channels = reader.names("channels", frozenset(c.value for c in Channel))
    if not channels:
        raise reader.fail("channels", "must name at least one channel")
    consent_name = reader.text("consent")
    if consent_name and consent_name not in {p.value for p in Purpose}:
        raise reader.fail("consent", f"unknown purpose {consent_name!r}")
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise reader.fail("priority", f"must be an integer, got {priority!r}")
    features: dict[str, float | str] = {}
    for key, value in reader.mapping("features").items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise reader.fail(f"features.{key}", "must be a number or a string")
        if isinstance(value, float) and not math.isfinite(value):
            raise reader.fail(f"features.{key}", "must be finite")
        features[key] = float(value) if isinstance(value, int) else value
    payload = {key: str(value) for key, value in reader.mapping("payload").items()}
    fallback = raw.get("fallback", False)
    if not isinstance(fallback, bool):
        raise reader.fail("fallback", "must be true or false")
    offer = Offer(
        offer_id=offer_id,
        title=reader.text("title", required=True),
        description=reader.text("description"),
        category=reader.text("category", required=True),
        products=reader.names("products"),
        value=reader.number("value", 0, 1e6),
        discount_pct=reader.number("discount_pct", 0, 100),
        valid_from=reader.date("valid_from"),
        valid_until=reader.date("valid_until"),
        seasons=frozenset(reader.names("seasons", KNOWN_SEASONS)),
        dayparts=frozenset(reader.names("dayparts", DAYPARTS)),
        stores=frozenset(reader.names("stores")),
        consent=Purpose(consent_name) if consent_name else None,
        channels=tuple(Channel(c) for c in channels),
        priority=priority,
        features=features,
        payload=payload,
        fallback=fallback,
    )
    if offer.valid_from and offer.valid_until and offer.valid_until < offer.valid_from:
        raise reader.fail("valid_until", "is before valid_from")
    return offer


def parse_catalog(data: object, source: str, fallback_offer_id: str = "") -> Catalog:
    """Validates parsed YAML; `fallback_offer_id` (config) overrides the offers' `fallback` flag."""
    if not isinstance(data, dict) or not isinstance(data.get("offers"), list):
        raise CatalogError(f"{source}: must be a mapping with a list `offers`")
    offers = tuple(_parse_offer(source, i, raw) for i, raw in enumerate(data["offers"]))
    if not offers:
        raise CatalogError(f"{source}: offers: must not be empty")
    seen: dict[str, int] = {}
    for index, offer in enumerate(offers):
        if offer.offer_id in seen:
            raise CatalogError(
                f"{source}: offers[{index}] ({offer.offer_id}): id: duplicate of "
                f"offers[{seen[offer.offer_id]}]"
            )
        seen[offer.offer_id] = index
    if fallback_offer_id:
        chosen = next((o for o in offers if o.offer_id == fallback_offer_id), None)
        if chosen is None:
            raise CatalogError(
                f"{source}: fallback offer {fallback_offer_id!r} (EMMA_FALLBACK_OFFER) "
                "is not in the catalog"
            )
        return Catalog(offers=offers, fallback=chosen, source=source)
    flagged = [o for o in offers if o.fallback]
    if len(flagged) != 1:
        raise CatalogError(
            f"{source}: fallback: exactly one offer must have `fallback: true` "
            f"(or set EMMA_FALLBACK_OFFER), found {len(flagged)}"
        )
    return Catalog(offers=offers, fallback=flagged[0], source=source)


def load_catalog(path: Path, fallback_offer_id: str = "") -> Catalog:
    """Reads and validates the catalog file; raises CatalogError naming file, offer and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CatalogError(f"{path}: not valid YAML: {error}") from None
    return parse_catalog(data, str(path), fallback_offer_id)
