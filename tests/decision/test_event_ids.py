"""Event ids are UUIDv7: valid UUIDs that tell when their decision was made."""

from __future__ import annotations

import time
import uuid

from bench.decision import seeded_event_ids
from emma.decision.event_ids import age_s, event_id_of, issued_ms, new_event_id

JUNE_MS = 1_780_000_000_000


def test_an_event_id_is_a_version_7_uuid_that_carries_its_time() -> None:
    event_id = new_event_id(JUNE_MS)
    parsed = uuid.UUID(hex=event_id)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert issued_ms(event_id) == JUNE_MS
    assert len({new_event_id(JUNE_MS) for _ in range(1000)}) == 1000


def test_later_decisions_sort_after_earlier_ones() -> None:
    ids = [new_event_id(JUNE_MS + step) for step in range(50)]
    assert ids == sorted(ids)


def test_ids_made_elsewhere_carry_no_time() -> None:
    for foreign in (uuid.uuid4().hex, "e1", "order-42", "z" * 32, ""):
        assert issued_ms(foreign) is None


def test_the_age_of_a_decision_comes_from_its_id() -> None:
    age = age_s(new_event_id(time.time_ns() // 1_000_000 - 3_000))
    assert age is not None and 2.9 <= age <= 10.0
    assert age_s(uuid.uuid4().hex) is None


def test_an_id_from_given_bits_is_a_version_7_uuid_and_the_same_every_time() -> None:
    event_id = event_id_of(JUNE_MS, 2**80 - 1)  # every random bit set
    parsed = uuid.UUID(hex=event_id)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert issued_ms(event_id) == JUNE_MS
    assert event_id_of(JUNE_MS, 2**80 - 1) == event_id != event_id_of(JUNE_MS, 0)


def test_seeded_ids_repeat_run_after_run_and_differ_within_one() -> None:
    first, again, other = seeded_event_ids(7), seeded_event_ids(7), seeded_event_ids(8)
    ids = [first() for _ in range(100)]
    assert ids == [again() for _ in range(100)]
    assert ids != [other() for _ in range(100)]
    assert len(set(ids)) == 100 and ids == sorted(ids)
