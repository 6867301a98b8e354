"""Pluggable providers of extra signals (weather, ...), the static-file provider and the
collection of signals within a deadline."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from emma.context import countries
from emma.context.datafiles import DataFileError, read_data
from emma.context.features import FEATURE_NAME, Feature, is_builtin_name
from emma.context.resolver import ResolvedContext

log = logging.getLogger(__name__)

# A value per month (January first), e.g. typical temperatures.
Value = float | str | tuple[float | str, ...]
_LAYERS = ("default", "countries", "regions", "stores")


class SignalProvider(Protocol):
    """A source of extra context signals; must be quick, it is skipped when late or failing."""

    @property
    def name(self) -> str: ...

    async def signals(self, context: ResolvedContext) -> list[Feature]: ...


@runtime_checkable
class ImmediateSignalProvider(Protocol):
    """A provider that answers from memory; asked inline, without a task or a timeout."""

    @property
    def name(self) -> str: ...

    def signals_now(self, context: ResolvedContext) -> list[Feature]: ...


class SignalFileError(ValueError):
    """The signal file is malformed; the message names the file and the entry."""


class StaticFileProvider:
    """Fixed signals from a YAML file, by store, region, country and month.

    The file (every part optional):

        name: weather                   # the provider's name in skipped_providers and logs
        default:   {<signal>: <value>}  # for every request
        countries: {DE: {...}}          # ISO 3166-1 alpha-2
        regions:   {DE-BY: {...}}       # country-subdivision
        stores:    {berlin-mitte: {...}}

    A value is a number, a text, or a list of 12 of them, one per local month from
    January. Later parts override earlier ones; a store's values apply when the request
    is at or near that store (its store id, or within the region radius).
    """

    def __init__(
        self,
        layers: Mapping[str, Mapping[str, Mapping[str, Value]]],
        name: str = "static_file",
    ) -> None:
        self.name = name
        self._default = dict(layers.get("default", {}).get("", {}))
        self._countries = {key: dict(v) for key, v in layers.get("countries", {}).items()}
        self._regions = {key: dict(v) for key, v in layers.get("regions", {}).items()}
        self._stores = {key: dict(v) for key, v in layers.get("stores", {}).items()}
        self._lookup = functools.lru_cache(maxsize=4096)(self._compute)

    @classmethod
    def from_file(cls, path: Path) -> StaticFileProvider:
        try:
            data = read_data(path)
        except (OSError, DataFileError) as error:
            raise SignalFileError(f"{path}: cannot read the signal file: {error}") from None
        if not isinstance(data, dict) or set(data) - {"name", *_LAYERS}:
            raise SignalFileError(
                f"{path}: expected a mapping with name, {', '.join(_LAYERS)} (each optional)"
            )
        name = data.get("name", "static_file")
        if not isinstance(name, str) or not FEATURE_NAME.match(name):
            raise SignalFileError(f"{path}: name: expected a snake_case name")
        layers: dict[str, dict[str, dict[str, Value]]] = {
            "default": {"": _values(data.get("default") or {}, f"{path}: default")}
        }
        for layer in _LAYERS[1:]:
            entries = data.get(layer) or {}
            if not isinstance(entries, dict):
                raise SignalFileError(f"{path}: {layer}: expected a mapping")
            for key in entries:
                _check_key(layer, str(key), f"{path}: {layer}.{key}")
            layers[layer] = {
                str(key): _values(values, f"{path}: {layer}.{key}")
                for key, values in entries.items()
            }
        return cls(layers, name)

    def _compute(self, store_id: str, country: str, region: str, month: int) -> tuple[Feature, ...]:
        merged = dict(self._default)
        merged.update(self._countries.get(country, {}))
        if region:
            merged.update(self._regions.get(f"{country}-{region}", {}))
        if store_id:
            merged.update(self._stores.get(store_id, {}))
        return tuple(
            Feature(name, value[month - 1] if isinstance(value, tuple) else value)
            for name, value in merged.items()
        )

    def signals_now(self, context: ResolvedContext) -> list[Feature]:
        store_id = context.store.store_id if context.store and context.store_nearby else ""
        key = (store_id, context.country, context.region, context.local_time.month)
        return list(self._lookup(*key))

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        return self.signals_now(context)


def _check_key(layer: str, key: str, where: str) -> None:
    if layer == "countries" and not countries.is_country(key):
        raise SignalFileError(f"{where}: not an ISO 3166-1 alpha-2 code with holidays")
    if layer == "regions":
        country, _, region = key.partition("-")
        if not countries.is_country(country) or countries.canonical_region(country, region) != (
            region
        ):
            raise SignalFileError(f"{where}: expected COUNTRY-REGION, e.g. DE-BY")


def _scalar(value: Any) -> float | str | None:
    if isinstance(value, bool):
        return None  # YAML's yes/no: ambiguous as a number
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    return value if isinstance(value, str) else None


def _values(values: Any, where: str) -> dict[str, Value]:
    if not isinstance(values, dict):
        raise SignalFileError(f"{where}: expected a mapping of signal names to values")
    parsed: dict[str, Value] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not FEATURE_NAME.match(name):
            raise SignalFileError(f"{where}.{name}: expected a snake_case name")
        if is_builtin_name(name):
            raise SignalFileError(f"{where}.{name}: the name of a built-in feature")
        if isinstance(value, list):
            monthly = [_scalar(v) for v in value]
            if len(monthly) != 12 or any(v is None for v in monthly):
                raise SignalFileError(
                    f"{where}.{name}: a list needs 12 numbers or texts, January first"
                )
            parsed[name] = tuple(v for v in monthly if v is not None)
            continue
        scalar = _scalar(value)
        if scalar is None:
            raise SignalFileError(f"{where}.{name}: expected a number or a text")
        parsed[name] = scalar
    return parsed


class SignalCollector:
    """Asks every provider for signals within a deadline; never fails the request.

    Immediate providers answer inline; the others run at once as tasks and are
    skipped when they fail or are slower than the timeout (or the time the call has
    left). Signals that are malformed or shadow a built-in feature are dropped.
    """

    def __init__(self, providers: Sequence[SignalProvider], timeout_s: float) -> None:
        self.providers = tuple(providers)
        self.timeout_s = timeout_s
        self._immediate = {
            index
            for index, provider in enumerate(self.providers)
            if isinstance(provider, ImmediateSignalProvider)
        }
        # Every provider answers from memory: collect_now serves, with no coroutine.
        self.immediate_only = len(self._immediate) == len(self.providers)

    def collect_now(self, context: ResolvedContext) -> tuple[list[Feature], list[str]]:
        """collect, when immediate_only: the signals and the names of the providers skipped."""
        if not self.immediate_only:
            raise RuntimeError("collect_now needs providers that all answer immediately")
        if not self.providers:
            return [], []
        results: list[list[Feature] | BaseException | None] = []
        for provider in self.providers:
            try:
                results.append(provider.signals_now(context))  # type: ignore[attr-defined]
            except Exception as error:
                results.append(error)
        return self._merge(results)

    async def collect(
        self, context: ResolvedContext, time_left_s: float | None = None
    ) -> tuple[list[Feature], list[str]]:
        """The signals and the names of the providers skipped."""
        if not self.providers:
            return [], []
        results: list[list[Feature] | BaseException | None] = [None] * len(self.providers)
        for index in self._immediate:
            immediate: Any = self.providers[index]
            try:
                results[index] = immediate.signals_now(context)
            except Exception as error:
                results[index] = error
        waiting = [i for i in range(len(self.providers)) if i not in self._immediate]
        if waiting:
            timeout = self.timeout_s if time_left_s is None else min(self.timeout_s, time_left_s)
            if timeout <= 0:
                for index in waiting:
                    results[index] = TimeoutError()
            else:
                answers = await asyncio.gather(
                    *(
                        asyncio.wait_for(self.providers[i].signals(context), timeout)
                        for i in waiting
                    ),
                    return_exceptions=True,
                )
                for index, answer in zip(waiting, answers, strict=True):
                    results[index] = answer
        return self._merge(results)

    def _merge(
        self, results: list[list[Feature] | BaseException | None]
    ) -> tuple[list[Feature], list[str]]:
        signals: list[Feature] = []
        skipped: list[str] = []
        for provider, result in zip(self.providers, results, strict=True):
            if isinstance(result, BaseException) or not isinstance(result, list):
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result  # cancellation and the like are not the provider's fault
                skipped.append(provider.name)
                reason = "timeout" if isinstance(result, TimeoutError) else type(result).__name__
                log.warning(
                    "signal provider skipped", extra={"provider": provider.name, "reason": reason}
                )
                continue
            for feature in result:
                if _acceptable(feature):
                    signals.append(feature)
                else:
                    log.warning(
                        "signal dropped",
                        extra={"provider": provider.name, "signal": getattr(feature, "name", "")},
                    )
        return signals, skipped


def _acceptable(feature: Any) -> bool:
    if not isinstance(feature, Feature):
        return False
    name, value = feature
    try:
        # The type is part of the key: True == 1 == 1.0, but only numbers are numbers.
        return _acceptable_feature(name, value, type(value).__name__)
    except TypeError:  # unhashable: not a name, a number or a text anyway
        return False


@functools.lru_cache(maxsize=4096)  # providers repeat their signals; check each once
def _acceptable_feature(name: Any, value: Any, kind: str) -> bool:
    if not isinstance(name, str) or not FEATURE_NAME.match(name) or is_builtin_name(name):
        return False
    if isinstance(value, bool):
        return False
    return isinstance(value, str) or (isinstance(value, int | float) and math.isfinite(value))


async def collect_signals(
    providers: Sequence[SignalProvider],
    context: ResolvedContext,
    timeout_s: float,
) -> tuple[list[Feature], list[str]]:
    """Asks every provider at once; returns their signals and the providers skipped."""
    return await SignalCollector(providers, timeout_s).collect(context)
