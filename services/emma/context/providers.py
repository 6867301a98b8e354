"""Pluggable providers of extra signals (weather, ...) and a static-file provider."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from emma.context.features import FEATURE_NAME, Feature, is_builtin_name
from emma.context.resolver import ResolvedContext

log = logging.getLogger(__name__)


class SignalProvider(Protocol):
    """A source of extra context signals; must be quick, it is skipped when late."""

    @property
    def name(self) -> str: ...

    async def signals(self, context: ResolvedContext) -> list[Feature]: ...


class SignalFileError(ValueError):
    """The signal file is malformed; the message names the file and the entry."""


class StaticFileProvider:
    """Fixed signals per store id from a YAML file, with defaults for any other request.

    The file: `stores: {<store id>: {<name>: <number or text>}}` and optionally
    `default: {<name>: <value>}`; a store's values override the defaults.
    """

    name = "static_file"

    def __init__(
        self,
        per_store: Mapping[str, Sequence[Feature]],
        default: Sequence[Feature] = (),
    ) -> None:
        self._per_store = {store: tuple(features) for store, features in per_store.items()}
        self._default = tuple(default)

    @classmethod
    def from_file(cls, path: Path) -> StaticFileProvider:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise SignalFileError(f"{path}: cannot read the signal file: {error}") from None
        if not isinstance(data, dict) or set(data) - {"stores", "default"}:
            raise SignalFileError(f"{path}: expected a mapping with `stores` and `default`")
        stores = data.get("stores") or {}
        if not isinstance(stores, dict):
            raise SignalFileError(f"{path}: stores: expected a mapping of store ids")
        return cls(
            {
                str(store): _features(values, f"{path}: stores.{store}")
                for store, values in stores.items()
            },
            _features(data.get("default") or {}, f"{path}: default"),
        )

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        merged = {feature.name: feature for feature in self._default}
        if context.store is not None:
            merged.update((f.name, f) for f in self._per_store.get(context.store.store_id, ()))
        return list(merged.values())


def _features(values: Any, where: str) -> list[Feature]:
    if not isinstance(values, dict):
        raise SignalFileError(f"{where}: expected a mapping of signal names to values")
    features = []
    for name, value in values.items():
        if not isinstance(name, str) or not FEATURE_NAME.match(name):
            raise SignalFileError(f"{where}.{name}: expected a snake_case name")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise SignalFileError(f"{where}.{name}: expected a number or a text")
        features.append(Feature(name, float(value) if isinstance(value, int | float) else value))
    return features


async def collect_signals(
    providers: Sequence[SignalProvider],
    context: ResolvedContext,
    timeout_s: float,
) -> tuple[list[Feature], list[str]]:
    """Asks every provider at once; returns their signals and the providers skipped.

    A provider that fails or is slower than `timeout_s` is skipped, never failing the
    request; a signal that is malformed or shadows a built-in feature is dropped.
    """

    async def ask(provider: SignalProvider) -> list[Feature]:
        return await asyncio.wait_for(provider.signals(context), timeout_s)

    results = await asyncio.gather(*(ask(p) for p in providers), return_exceptions=True)
    signals: list[Feature] = []
    skipped: list[str] = []
    for provider, result in zip(providers, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            skipped.append(provider.name)
            reason = "timeout" if isinstance(result, TimeoutError) else type(result).__name__
            log.warning(
                "signal provider skipped", extra={"provider": provider.name, "reason": reason}
            )
            continue
        for feature in result:
            if FEATURE_NAME.match(feature.name) and not is_builtin_name(feature.name):
                signals.append(feature)
            else:
                log.warning(
                    "signal dropped", extra={"provider": provider.name, "signal": feature.name}
                )
    return signals, skipped
