"""Countries, subdivisions, holiday categories and languages known to the holidays package."""

from __future__ import annotations

import functools

import holidays

# Only holidays of this category are counted unless a store asks for more.
PUBLIC = "public"


@functools.cache
def _supported() -> dict[str, frozenset[str]]:
    return {
        country: frozenset(subdivisions)
        for country, subdivisions in holidays.list_supported_countries().items()
    }


def is_country(code: str) -> bool:
    """Whether `code` is an ISO 3166-1 alpha-2 country the holidays package knows."""
    return code in _supported()


@functools.lru_cache(maxsize=4096)
def canonical_region(country: str, region: str) -> str | None:
    """The holidays package's spelling of a subdivision of `country`, None when unknown."""
    for known in _supported().get(country, ()):
        if known.upper() == region.upper():
            return known
    return None


@functools.cache
def _entity_facts(country: str) -> tuple[str | None, frozenset[str], frozenset[str]]:
    entity = holidays.country_holidays(country, years=[])
    return (
        entity.default_language,
        frozenset(entity.supported_languages),
        frozenset(entity.supported_categories),
    )


def default_language(country: str) -> str | None:
    return _entity_facts(country)[0]


def supports_language(country: str, language: str) -> bool:
    """Whether holiday names of `country` are available in `language` (e.g. "en_US")."""
    return language in _entity_facts(country)[1]


def holiday_categories(country: str) -> frozenset[str]:
    """The holiday categories of `country`, e.g. {"public", "catholic", "school"} for DE."""
    return _entity_facts(country)[2]
