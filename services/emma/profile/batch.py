"""A batch of events grouped by customer, each group folded into what lua/record.lua applies."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence

from emma.profile import aggregates
from emma.profile.keys import home_id, is_derived
from emma.profile.model import CustomerRef, Event, IdentifierKind, RecordResult
from emma.profile.record import identifier_field

# One event's time (epoch seconds) and the updates it makes (aggregates.event_ops).
Timed = tuple[float, list[aggregates.Op]]


def event_id_hash(event_id: str) -> str:
    """The 64-bit integer a replay window stores for an event id (an intset: 8 bytes each)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big", signed=True))


def recorded_identifier(ref: CustomerRef) -> str | None:
    """The identifier field an event under `ref` records; none for a derived customer id,
    which is not an identifier of its own."""
    if ref.kind == IdentifierKind.CUSTOMER_ID and is_derived(ref.value):
        return None
    return identifier_field(ref)


@dataclasses.dataclass(slots=True)
class CustomerEvents:
    """One customer's events of a batch: the first of each event id, in batch order."""

    home: str
    identifiers: set[str] = dataclasses.field(default_factory=set)
    # Parallel lists: each event's place in the batch, its id's hash, time and updates.
    positions: list[int] = dataclasses.field(default_factory=list)
    seen: list[str] = dataclasses.field(default_factory=list)
    updates: list[Timed] = dataclasses.field(default_factory=list)

    def add(self, position: int, id_hash: str, identifier: str | None, timed: Timed) -> None:
        self.positions.append(position)
        self.seen.append(id_hash)
        self.updates.append(timed)
        if identifier is not None:
            self.identifiers.add(identifier)

    def without(self, indexes: set[int]) -> CustomerEvents:
        """These events but those at `indexes` (0-based, in this group's order)."""
        rest = CustomerEvents(self.home, self.identifiers)
        for index, position in enumerate(self.positions):
            if index not in indexes:
                rest.positions.append(position)
                rest.seen.append(self.seen[index])
                rest.updates.append(self.updates[index])
        return rest

    def payload(self, now_s: float, half_life_s: float) -> str:
        """ARGV[1] of lua/record.lua: identifiers, event id hashes, the folded update."""
        update = aggregates.fold(self.updates, now_s, half_life_s)
        body = {"ids": sorted(self.identifiers), "seen": self.seen, "u": update}
        return json.dumps(body, separators=(",", ":"))


@dataclasses.dataclass(slots=True)
class Batch:
    """A checked batch of events by customer home; `repeats` counts repeated ids within it."""

    customers: dict[str, CustomerEvents] = dataclasses.field(default_factory=dict)
    repeats: int = 0
    # Per home: the event ids taken so far, to count an id repeated in the batch once.
    _ids: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def add(
        self, position: int, event_id: str, home: str, identifier: str | None, timed: Timed
    ) -> None:
        taken = self._ids.get(home)
        if taken is None:
            taken = self._ids[home] = set()
            self.customers[home] = CustomerEvents(home)
        elif event_id in taken:
            self.repeats += 1
            return
        taken.add(event_id)
        self.customers[home].add(position, event_id_hash(event_id), identifier, timed)


def of_events(events: Sequence[Event], default_zone: str) -> Batch:
    """A batch of checked domain events."""
    batch = Batch()
    for position, event in enumerate(events):
        timed = (event.time.timestamp(), aggregates.event_ops(event, default_zone))
        ref = event.customer
        batch.add(position, event.event_id, home_id(ref), recorded_identifier(ref), timed)
    return batch


@dataclasses.dataclass(frozen=True)
class Applied:
    """Events of one customer a batch applied: the profile they went to (after following
    redirects and merges) and their places in the batch."""

    customer_id: str
    positions: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What recording a batch did: the counts, and which events each profile took."""

    result: RecordResult
    applied: tuple[Applied, ...] = ()

    @staticmethod
    def combine(parts: Iterable[Recorded], repeats: int = 0) -> Recorded:
        result, applied = RecordResult(0, repeats), list[Applied]()
        for part in parts:
            result += part.result
            applied.extend(part.applied)
        return Recorded(result, tuple(applied))
