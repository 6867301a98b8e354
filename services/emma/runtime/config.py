"""Typed service configuration: frozen dataclasses filled from environment variables and flags."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def setting(default: Any, env: str, help: str, *, choices: Sequence[str] = ()) -> Any:
    """Declares a config field read from `env` (and the flag derived from the field name)."""
    return dataclasses.field(
        default=default, metadata={"env": env, "help": help, "choices": tuple(choices)}
    )


def _field_type(cls: type, field: dataclasses.Field[Any]) -> type:
    hint = typing.get_type_hints(cls)[field.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0]
    return typing.cast(type, hint)


def _convert(raw: str, kind: type, source: str) -> Any:
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("expected one of true/false/1/0/yes/no")
        if kind is int:
            return int(raw)
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError("expected a finite number")
            return value
        if kind is Path:
            return Path(raw)
        return raw
    except ValueError as error:
        raise ConfigError(f"{source}={raw!r}: {error}") from None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def load_config(
    cls: type[T],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    prog: str | None = None,
) -> T:
    """Builds `cls` from its defaults, then the environment, then command-line flags.

    Raises ConfigError naming the variable or flag when a value is malformed, and
    whatever `cls.__post_init__` raises for values that are well-formed but invalid.
    """
    environ = os.environ if environ is None else environ
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    values: dict[str, Any] = {}
    parser = argparse.ArgumentParser(prog=prog, description=cls.__doc__)
    for field in dataclasses.fields(cls):
        env = field.metadata.get("env")
        if env is None:
            continue
        kind = _field_type(cls, field)
        if env in environ:
            values[field.name] = _convert(environ[env], kind, env)
        parser.add_argument(
            _flag(field.name),
            dest=field.name,
            default=None,
            help=f"{field.metadata['help']} (env {env}, default {field.default!r})",
        )
    if argv is not None:
        parsed = parser.parse_args(list(argv))
        for field in dataclasses.fields(cls):
            raw = getattr(parsed, field.name, None)
            if raw is not None:
                values[field.name] = _convert(raw, _field_type(cls, field), _flag(field.name))
    for field in dataclasses.fields(cls):
        choices = field.metadata.get("choices")
        if choices and field.name in values and values[field.name] not in choices:
            raise ConfigError(
                f"{field.metadata['env']}={values[field.name]!r}: expected one of {list(choices)}"
            )
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None


def require(condition: bool, message: str) -> None:
    """Raises ConfigError with `message` unless `condition` holds; for __post_init__ checks."""
    if not condition:
        raise ConfigError(message)


def check_port(value: int, env: str) -> None:
    """A listening port: 0 (any free port) to 65535."""
    require(0 <= value <= 65535, f"{env}={value}: a port is 0..65535")
