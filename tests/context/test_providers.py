"""Signal providers: the static-file provider, its file, and collecting signals within a
deadline while skipping slow or failing providers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emma.context import clock
from emma.context.config import DEFAULT_SIGNALS_PATH, DEFAULT_STORES_PATH
from emma.context.features import Feature
from emma.context.providers import (
    SignalCollector,
    SignalFileError,
    StaticFileProvider,
    collect_signals,
)
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

LAYERED = """
name: local_weather
default:
  weather: unknown
  pollen: 0
countries:
  DE:
    weather: cloudy
    daylight_h: [8, 10, 12, 14, 16, 16.5, 16, 14, 12, 10, 8, 7.5]
regions:
  DE-BY:
    weather: foehn
stores:
  muenchen-marienplatz:
    pollen: 3
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


RESOLVER = ContextResolver(
    load_stores(DEFAULT_STORES_PATH),
    dayparts=clock.parse_dayparts("morning=5,evening=17"),
    default_time_zone="Europe/Berlin",
    default_country="DE",
)
OCTOBER = datetime(2026, 10, 14, 10, tzinfo=UTC)


def _context(
    store_id: str = "",
    instant: datetime = OCTOBER,
    location: tuple[float, float] | None = None,
    country: str = "",
    region: str = "",
) -> ResolvedContext:
    request = ContextRequest(
        instant=instant, store_id=store_id, location=location, country=country, region=region
    )
    return RESOLVER.resolve(request)


class ImmediateProvider:
    name = "immediate"

    def signals_now(self, context: ResolvedContext) -> list[Feature]:
        return [Feature("queue_length", 4.0)]

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        raise AssertionError("an immediate provider is asked inline")


class BrokenImmediateProvider:
    name = "broken"

    def signals_now(self, context: ResolvedContext) -> list[Feature]:
        raise KeyError("lost")

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        return []


class OddProvider:
    name = "odd"

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        return [
            Feature("nan_signal", float("nan")),
            Feature("flag", True),
            ("tuple_name", 1.0),  # type: ignore[list-item]
            Feature("crowd", 0.5),
        ]


class NotAListProvider:
    name = "not_a_list"

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        return "sunny"  # type: ignore[return-value]


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


async def test_collector_asks_immediate_providers_inline_even_without_time_left(
    static: StaticFileProvider,
) -> None:
    collector = SignalCollector(
        [ImmediateProvider(), SlowProvider(), static, BrokenImmediateProvider()], timeout_s=5
    )
    started = time.monotonic()
    signals, skipped = await collector.collect(_context("berlin-mitte"), time_left_s=0.0)
    assert time.monotonic() - started < 0.5
    assert skipped == ["slow", "broken"]
    assert [f.name for f in signals] == ["queue_length", "weather", "temperature_c"]


async def test_the_call_deadline_bounds_the_wait() -> None:
    collector = SignalCollector([SlowProvider()], timeout_s=5)
    started = time.monotonic()
    signals, skipped = await collector.collect(_context("berlin-mitte"), time_left_s=0.05)
    assert time.monotonic() - started < 1.0
    assert (signals, skipped) == ([], ["slow"])


async def test_malformed_answers_are_dropped_or_skipped() -> None:
    signals, skipped = await collect_signals(
        [OddProvider(), NotAListProvider()], _context("koeln-dom"), 0.05
    )
    assert signals == [Feature("crowd", 0.5)]
    assert skipped == ["not_a_list"]


def test_layers_and_monthly_values(tmp_path: Path) -> None:
    path = tmp_path / "signals.yaml"
    path.write_text(LAYERED)
    provider = StaticFileProvider.from_file(path)
    assert provider.name == "local_weather"

    def signals(context: ResolvedContext) -> dict[str, object]:
        return {f.name: f.value for f in provider.signals_now(context)}

    munich = signals(_context("muenchen-marienplatz"))
    assert munich == {"weather": "foehn", "pollen": 3.0, "daylight_h": 10.0}  # October
    berlin = signals(_context("berlin-mitte", instant=datetime(2026, 6, 21, 10, tzinfo=UTC)))
    assert berlin == {"weather": "cloudy", "pollen": 0.0, "daylight_h": 16.5}
    # Near no store, in Bavaria by request: the region's values, not the store's.
    bavaria = signals(_context(country="DE", region="BY"))
    assert bavaria == {"weather": "foehn", "pollen": 0.0, "daylight_h": 10.0}
    # Far from every store, in Sydney: only the defaults.
    sydney = signals(_context(location=(-33.87, 151.21)))
    assert sydney == {"weather": "unknown", "pollen": 0.0}


def test_the_bundled_weather_file() -> None:
    provider = StaticFileProvider.from_file(DEFAULT_SIGNALS_PATH)
    assert provider.name == "weather"
    december = provider.signals_now(
        _context("berlin-mitte", instant=datetime(2026, 12, 10, tzinfo=UTC))
    )
    assert december == [Feature("typical_temp_c", 2.0)]
    sydney_january = provider.signals_now(
        _context(instant=datetime(2026, 1, 10, tzinfo=UTC), country="AU", region="NSW")
    )
    assert sydney_january == [Feature("typical_temp_c", 23.0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stores: [1, 2]", "stores: expected a mapping"),
        ("stores:\n  berlin-mitte:\n    Weather: rain\n", r"stores\.berlin-mitte\.Weather: "),
        ("stores:\n  berlin-mitte:\n    weather: {a: 1}\n", "number or a text"),
        ("stores:\n  berlin-mitte:\n    sunny: yes\n", "number or a text"),
        ("default:\n  daypart: night\n", r"default\.daypart: the name of a built-in feature"),
        ("default:\n  store_weather: x\n", r"default\.store_weather: the name of a built-in"),
        ("default:\n  temp: [1, 2, 3]\n", r"default\.temp: a list needs 12"),
        ("countries:\n  XX: {temp: 1}\n", r"countries\.XX: not an ISO 3166-1"),
        ("regions:\n  DE: {temp: 1}\n", r"regions\.DE: expected COUNTRY-REGION"),
        ("regions:\n  DE-ZZ: {temp: 1}\n", r"regions\.DE-ZZ: expected COUNTRY-REGION"),
        ("name: Weather Feed\n", r"name: expected a snake_case name"),
        ("other: 1", "expected a mapping with name, default"),
        ("- 1\n", "expected a mapping with name, default"),
    ],
)
def test_malformed_signal_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "signals.yaml"
    path.write_text(text)
    with pytest.raises(SignalFileError, match=message):
        StaticFileProvider.from_file(path)


def test_unreadable_signal_file(tmp_path: Path) -> None:
    with pytest.raises(SignalFileError, match="cannot read the signal file"):
        StaticFileProvider.from_file(tmp_path / "missing.yaml")


async def test_a_boolean_is_dropped_even_after_an_equal_number_passed() -> None:
    class Flags:
        name = "flags"

        def __init__(self, value: object) -> None:
            self.value = value

        async def signals(self, context: ResolvedContext) -> list[Feature]:
            return [Feature("open_late", self.value)]  # type: ignore[arg-type]

    number, _ = await collect_signals([Flags(1.0)], _context("koeln-dom"), 0.05)
    flag, _ = await collect_signals([Flags(True)], _context("koeln-dom"), 0.05)
    listed, _ = await collect_signals([Flags([1])], _context("koeln-dom"), 0.05)
    assert (number, flag, listed) == ([Feature("open_late", 1.0)], [], [])
