"""Signal providers: the static file provider and skipping of slow or failing providers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emma.context import clock
from emma.context.config import DEFAULT_STORES_PATH
from emma.context.features import Feature
from emma.context.providers import SignalFileError, StaticFileProvider, collect_signals
from emma.context.resolver import ContextRequest, ContextResolver, ResolvedContext
from emma.context.stores import load_stores

SIGNALS = """
default:
  weather: unknown
stores:
  berlin-mitte:
    weather: rain
    temperature_c: 4.5
"""


class SlowProvider:
    name = "slow"

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        await asyncio.sleep(5)
        return [Feature("late", 1.0)]


class FailingProvider:
    name = "failing"

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        raise RuntimeError("weather API down")


class RudeProvider:
    name = "rude"

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        return [Feature("daypart", "midnight"), Feature("Bad Name", 1.0), Feature("pollen", 3.0)]


def _context(store_id: str) -> ResolvedContext:
    resolver = ContextResolver(
        load_stores(DEFAULT_STORES_PATH),
        dayparts=clock.parse_dayparts("morning=5,evening=17"),
        default_time_zone="Europe/Berlin",
        default_country="DE",
    )
    instant = datetime(2026, 10, 14, 10, tzinfo=UTC)
    return resolver.resolve(ContextRequest(instant=instant, store_id=store_id))


@pytest.fixture
def static(tmp_path: Path) -> StaticFileProvider:
    path = tmp_path / "signals.yaml"
    path.write_text(SIGNALS)
    return StaticFileProvider.from_file(path)


async def test_static_file_gives_store_values_over_defaults(static: StaticFileProvider) -> None:
    berlin = await static.signals(_context("berlin-mitte"))
    assert sorted((f.name, f.value) for f in berlin) == [
        ("temperature_c", 4.5),
        ("weather", "rain"),
    ]
    assert await static.signals(_context("koeln-dom")) == [Feature("weather", "unknown")]


async def test_slow_and_failing_providers_are_skipped_within_the_timeout(
    static: StaticFileProvider,
) -> None:
    started = time.monotonic()
    signals, skipped = await collect_signals(
        [SlowProvider(), static, FailingProvider()], _context("berlin-mitte"), timeout_s=0.05
    )
    assert time.monotonic() - started < 1.0
    assert skipped == ["slow", "failing"]
    assert {f.name for f in signals} == {"weather", "temperature_c"}


async def test_signals_shadowing_built_in_features_or_malformed_are_dropped() -> None:
    signals, skipped = await collect_signals([RudeProvider()], _context("koeln-dom"), 0.05)
    assert signals == [Feature("pollen", 3.0)]
    assert skipped == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stores: [1, 2]", "stores: expected a mapping"),
        ("stores:\n  berlin-mitte:\n    Weather: rain\n", r"stores\.berlin-mitte\.Weather"),
        ("stores:\n  berlin-mitte:\n    weather: [rain]\n", "number or a text"),
        ("other: 1", "expected a mapping with"),
    ],
)
def test_malformed_signal_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "signals.yaml"
    path.write_text(text)
    with pytest.raises(SignalFileError, match=message):
        StaticFileProvider.from_file(path)
