"""The profile outbox: one entry per recorded batch, none for a pure replay."""

from __future__ import annotations

from emma.profile.v1 import profile_pb2

from .conftest import FRIDAY_NOON, Moments, customer, event


async def test_one_entry_per_batch_and_none_for_a_replay(moments: Moments) -> None:
    anna = customer()
    batch = [
        event(anna, FRIDAY_NOON, support_contact=profile_pb2.SupportContact(sentiment=0.5)),
        event(anna, FRIDAY_NOON, support_contact=profile_pb2.SupportContact(sentiment=0.2)),
    ]
    await moments.record(*batch)
    await moments.record(*batch)  # a replay: every id seen before
    entries = await moments.redis.xrange("emma:profile-events")
    assert len(entries) == 1
    fields = entries[0][1]
    stored = profile_pb2.RecordEventsRequest.FromString(fields[b"events"])
    assert [e.event_id for e in stored.events] == [e.event_id for e in batch]
    assert fields[b"count"] == b"2"


async def test_processed_batches_are_deleted(moments: Moments) -> None:
    anna = customer()
    await moments.record(
        event(anna, FRIDAY_NOON, support_contact=profile_pb2.SupportContact(sentiment=0.5))
    )
    await moments.step()
    assert await moments.redis.xlen("emma:profile-events") == 0
