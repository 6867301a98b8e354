"""Protobuf Timestamps from datetimes, without Timestamp.FromDatetime's timetuple round trip."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def stamp(time: datetime) -> Timestamp:
    """`time` as a Timestamp; a naive time is UTC, as FromDatetime takes it."""
    # FromDatetime goes through utctimetuple and calendar.timegm: a few microseconds a
    # time, and a profile or an answer carries dozens.
    since = (time if time.tzinfo is not None else time.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)
