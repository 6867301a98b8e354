"""Logged decisions and outcomes as the evaluator needs them, parsed from DSJSON lines."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from emma.decision.features import CHANNEL, OFFER, Namespaces

# What a decision's model version is when the fallback offer was answered (pipeline.py).
FALLBACK_VERSION = "fallback"


class LogFormatError(ValueError):
    """A decision log or reward line is not what the decision service writes."""


@dataclasses.dataclass(frozen=True)
class LoggedEvent:
    """One logged decision: the features, the logging policy's pmf and the chosen action.

    `pmf` and `actions` are in the order the model scored them (the DSJSON `c._multi`
    order), not the chosen-first order of the DSJSON `a`/`p` arrays.
    """

    event_id: str
    # When the decision was made (DSJSON Timestamp: the request time the caller gave).
    timestamp: datetime | None
    shared: Namespaces
    actions: tuple[Namespaces, ...]
    pmf: tuple[float, ...]
    chosen: int
    deferred: bool
    model_version: str
    # The line as logged, so an export keeps every field VW or other tools may read.
    raw: Mapping[str, Any]
    # When Redis appended it (the stream entry id), if read from the stream.
    logged_at: datetime | None = None

    @property
    def propensity(self) -> float:
        return self.pmf[self.chosen]

    def offer_id(self, index: int) -> str:
        """The offer of action `index`, read back from its `offer=<id>` feature."""
        return _value_of(self.actions[index].get(OFFER, {}), "offer")

    def channel(self, index: int) -> str:
        return _value_of(self.actions[index].get(CHANNEL, {}), "ch")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """An entry of the reward stream: a reward (value) or an activation of a deferred decision."""

    event_id: str
    activation: bool
    value: float
    timestamp: datetime | None
    logged_at: datetime | None = None
    # The caller's idempotency key: a retried Reward repeats it, and counts once.
    key: str = ""


def _value_of(features: Mapping[str, float], name: str) -> str:
    prefix = f"{name}="
    return next((key[len(prefix) :] for key in features if key.startswith(prefix)), "")


def entry_time(entry_id: str) -> datetime | None:
    """The instant of a Redis stream entry id such as `1718000000000-3` (Redis's clock)."""
    try:
        return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def parse_timestamp(text: object) -> datetime | None:
    """DSJSON's `2026-01-01T10:00:00.000Z`; None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _namespaces(value: object, where: str) -> Namespaces:
    if not isinstance(value, Mapping):
        raise LogFormatError(f"{where}: expected an object of namespaces")
    result: Namespaces = {}
    for namespace, features in value.items():
        if str(namespace).startswith("_"):
            continue
        if not isinstance(features, Mapping):
            raise LogFormatError(f"{where}.{namespace}: expected an object of features")
        result[str(namespace)] = {str(k): float(v) for k, v in features.items()}
    return result


def _probabilities(values: Sequence[Any], count: int, event_id: str) -> list[float]:
    pmf = [float(p) for p in values]
    if len(pmf) != count or not all(math.isfinite(p) and 0 <= p <= 1 for p in pmf):
        raise LogFormatError(f"{event_id}: p must hold {count} probabilities in [0, 1]")
    return pmf


def parse_decision(line: Mapping[str, Any]) -> LoggedEvent:
    """A LoggedEvent from a DSJSON CB line as `LoggedDecision.dsjson()` writes it."""
    event_id = line.get("EventId")
    if not isinstance(event_id, str) or not event_id:
        raise LogFormatError("a decision line has no EventId")
    context = line.get("c")
    if not isinstance(context, Mapping) or not isinstance(context.get("_multi"), list):
        raise LogFormatError(f"{event_id}: c._multi (the actions) is missing")
    actions = tuple(
        _namespaces(action, f"{event_id}: c._multi[{i}]")
        for i, action in enumerate(context["_multi"])
    )
    if not actions:
        raise LogFormatError(f"{event_id}: no actions")
    ids, probabilities = line.get("a"), line.get("p")
    if not isinstance(ids, list) or not isinstance(probabilities, list):
        raise LogFormatError(f"{event_id}: a and p must be lists")
    # `a` holds 1-based action ids, the chosen one first; `p` their probabilities.
    order = [int(i) - 1 for i in ids]
    if sorted(order) != list(range(len(actions))):
        raise LogFormatError(f"{event_id}: a must list each of the {len(actions)} actions once")
    chosen_first = _probabilities(probabilities, len(actions), event_id)
    pmf = [0.0] * len(actions)
    for index, probability in zip(order, chosen_first, strict=True):
        pmf[index] = probability
    chosen = order[0]
    if pmf[chosen] <= 0:
        raise LogFormatError(f"{event_id}: the chosen action has probability 0")
    state = line.get("VWState")
    version = str(state.get("m", "")) if isinstance(state, Mapping) else ""
    return LoggedEvent(
        event_id=event_id,
        timestamp=parse_timestamp(line.get("Timestamp")),
        shared=_namespaces(context, f"{event_id}: c"),
        actions=actions,
        pmf=tuple(pmf),
        chosen=chosen,
        deferred=bool(line.get("_skipLearn", False)),
        model_version=version,
        raw=line,
    )


def parse_outcome(line: Mapping[str, Any], kind: str = "") -> Outcome:
    """An Outcome from a reward-stream line: `{EventId, v}` or `{EventId, ActionTaken}`."""
    event_id = line.get("EventId")
    if not isinstance(event_id, str) or not event_id:
        raise LogFormatError("a reward line has no EventId")
    activation = kind == "activation" or ("ActionTaken" in line and "v" not in line)
    value = 0.0
    if not activation:
        try:
            value = float(line.get("v", 0.0))
        except (TypeError, ValueError):
            raise LogFormatError(f"{event_id}: v must be a number") from None
        if not math.isfinite(value):
            raise LogFormatError(f"{event_id}: v must be finite")
    key = line.get("key", "")
    return Outcome(
        event_id=event_id,
        activation=activation,
        value=value,
        timestamp=parse_timestamp(line.get("Timestamp")),
        key=key if isinstance(key, str) else "",
    )
