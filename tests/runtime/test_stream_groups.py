"""A consumer group's unread entries: none once it was given the stream's last entry,
even when Redis's own lag estimate says otherwise after a trim."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from emma.runtime.redis_server import RedisServer
from emma.runtime.stream_groups import stream_id, unread


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    yield connection
    connection.delete("s")
    connection.close()


def test_ids_order_by_time_then_sequence_not_as_text() -> None:
    assert stream_id("10-0") > stream_id("9-5")
    assert stream_id(b"9-5") > stream_id("9-4")
    assert stream_id("7") == (7, 0)


def test_behind_the_last_entry_the_estimate_counts_and_at_least_one() -> None:
    group = {"last-delivered-id": b"1-0", "lag": 5}
    assert unread(group, "3-0") == 5
    assert unread({**group, "lag": None}, "3-0") == 1  # Redis could not estimate
    assert unread({**group, "lag": 0}, "3-0") == 1  # behind, whatever the estimate
    assert unread(group, "1-0") == 0


def test_a_group_that_read_everything_of_a_trimmed_stream_has_nothing_unread(
    client: redis.Redis,
) -> None:
    # redis/redis#13957: read one, trim past it, read the rest; Redis 7.0's lag stays 3.
    for sequence in range(1, 6):
        client.xadd("s", {"data": sequence}, id=f"{sequence}-0")
    client.xgroup_create("s", "g", id="0")
    client.xreadgroup("g", "c", {"s": ">"}, count=1)
    client.xtrim("s", maxlen=1, approximate=False)
    client.xreadgroup("g", "c", {"s": ">"}, count=1)
    assert client.xreadgroup("g", "c", {"s": ">"}) == []  # nothing left to give
    [group] = client.xinfo_groups("s")
    assert unread(group, client.xinfo_stream("s")["last-generated-id"]) == 0
    client.xadd("s", {"data": 6}, id="6-0")
    [group] = client.xinfo_groups("s")
    assert unread(group, client.xinfo_stream("s")["last-generated-id"]) >= 1
