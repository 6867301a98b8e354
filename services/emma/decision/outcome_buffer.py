"""Rewards and activations that Redis could not take, held in memory and written, in order,
once it answers.

A Reward or an Activate during a Redis restart used to fail: an error for a dependency's
fault. Both can be held instead, since writing one twice (a timed-out write that Redis
ran after all, then the held copy) counts once: the learner drops rewards with a repeated
idempotency key, and an activation records only the first. A reward without a key is
never held. The answer then says `held`. Like the decision log's buffer this is memory,
not disk: a replica that stops before Redis is back loses what it holds, and the caller
was told so by `held`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from emma.runtime.spool import Spool
from emma.runtime.write_behind import WriteBehind

# Delays between attempts while Redis does not answer: a refused connection costs little.
FIRST_RETRY_S = 0.05
LAST_RETRY_S = 0.5


@dataclasses.dataclass(frozen=True)
class HeldReward:
    event_id: str
    value: float
    kind: str
    time: datetime
    key: str


@dataclasses.dataclass(frozen=True)
class HeldActivation:
    event_id: str
    time: datetime


HeldOutcome = HeldReward | HeldActivation


class OutcomeStore(Protocol):
    """Where held outcomes go (emma.decision.decision_log.DecisionStore)."""

    async def activate(self, event_id: str, time: datetime) -> bool: ...

    async def reward(
        self, event_id: str, value: float, kind: str, time: datetime, key: str = ""
    ) -> bool: ...


class OutcomeBuffer(WriteBehind[HeldOutcome]):
    """At most `capacity` held outcomes, written oldest first by a task of its own.

    A held activation is written without asking whether its decision is known: its entry
    may still wait in another replica's buffer, and the learner counts an activation of a
    decision that never comes as unknown. The first activation runs `on_activate`, as an
    activation answered at once does (it counts nothing for a decision it does not know).
    """

    def __init__(
        self,
        store: OutcomeStore,
        capacity: int,
        *,
        on_activate: Callable[[str, datetime], Awaitable[None]] | None = None,
        retry_s: tuple[float, float] = (FIRST_RETRY_S, LAST_RETRY_S),
        spool_path: Path | None = None,
    ) -> None:
        spool = Spool(spool_path, _spooled, _unspooled) if spool_path is not None else None
        super().__init__("outcomes", self._write_all, capacity, retry_s=retry_s, spool=spool)
        self._store = store
        self.on_activate = on_activate

    def hold(self, outcome: HeldOutcome) -> bool:
        """Keeps an outcome to write later; False when not kept (a reward without a key,
        a full buffer, or a closing one)."""
        if isinstance(outcome, HeldReward) and not outcome.key:
            return False
        return self.keep(outcome)

    async def _write_all(self, batch: Sequence[HeldOutcome]) -> None:
        # One by one, in order: a failure leaves the whole batch held, and writing its
        # first outcomes again counts them once (the key, the first activation).
        for outcome in batch:
            if isinstance(outcome, HeldReward):
                await self._store.reward(
                    outcome.event_id, outcome.value, outcome.kind, outcome.time, outcome.key
                )
            else:
                await self._activate(outcome)

    async def _activate(self, activation: HeldActivation) -> None:
        first = await self._store.activate(activation.event_id, activation.time)
        if first and self.on_activate is not None:
            await self.on_activate(activation.event_id, activation.time)


def _spooled(outcome: HeldOutcome) -> bytes:
    fields: dict[str, Any] = dataclasses.asdict(outcome)
    fields["time"] = outcome.time.isoformat()
    fields["outcome"] = "reward" if isinstance(outcome, HeldReward) else "activation"
    return json.dumps(fields, separators=(",", ":")).encode()


def _unspooled(line: bytes) -> HeldOutcome:
    fields = json.loads(line)
    kind = fields.pop("outcome")
    fields["time"] = datetime.fromisoformat(fields["time"])
    return HeldReward(**fields) if kind == "reward" else HeldActivation(**fields)
