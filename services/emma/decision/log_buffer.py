"""Decision-log entries whose write failed, held in memory and written again, in order."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from emma.decision.decision_log import EncodedDecision, LoggedDecision
from emma.runtime.spool import Spool
from emma.runtime.write_behind import WriteBehind

# Entries written per round trip while catching up. Packing one cost about 70 us of the
# event loop's time when entries held their line uncompressed (13 KB at 50 actions; about
# 4 KB now), so a batch holds Decide up by at most about 2 ms.
BATCH = 25
# Retry delays while Redis does not answer: short, because an outcome (Reward, Activate)
# that another replica writes before this one's entry joins nothing in the learner, and a
# refused connection costs little. (Outcomes sent to this replica wait for it: settle.)
FIRST_RETRY_S = 0.01
LAST_RETRY_S = 0.05


class EntryLog(Protocol):
    """What the buffer writes through (emma.decision.decision_log.DecisionStore)."""

    def encode(self, decision: LoggedDecision) -> EncodedDecision: ...

    async def append_encoded(self, entries: Sequence[EncodedDecision]) -> None: ...


class LogBuffer(WriteBehind[EncodedDecision]):
    """The decision log's write-behind buffer, used only when a write failed.

    While entries wait, new entries must be kept too (`waiting`), so the log stays in
    order. A timed-out write that Redis ran anyway is written a second time: the learner
    drops a repeated event id. When the buffer is full the entry is dropped, counted and
    reported to the caller, whose answer then says the decision log is degraded. Entries
    are kept encoded, so an attempt while Redis is away costs no encoding.
    """

    def __init__(
        self,
        store: EntryLog,
        capacity: int,
        *,
        batch: int = BATCH,
        retry_s: tuple[float, float] = (FIRST_RETRY_S, LAST_RETRY_S),
        spool_path: Path | None = None,
    ) -> None:
        spool = Spool(spool_path, _spooled, _unspooled) if spool_path is not None else None
        super().__init__(
            "decision_log",
            store.append_encoded,
            capacity,
            batch=batch,
            retry_s=retry_s,
            spool=spool,
        )
        self._encode = store.encode

    def keep_decision(self, entry: LoggedDecision) -> bool:
        """Holds an entry to be written later; False when it was dropped (buffer full)."""
        return self.keep(self._encode(entry))


def _spooled(entry: EncodedDecision) -> bytes:
    return json.dumps(dataclasses.asdict(entry), separators=(",", ":")).encode()


def _unspooled(line: bytes) -> EncodedDecision:
    return EncodedDecision(**json.loads(line))
