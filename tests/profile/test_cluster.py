"""The private Redis Cluster the tests run on, and the client chosen by the URL."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis

from emma.runtime.redis_client import connect_any_redis, connect_redis, is_cluster_url
from emma.runtime.redis_server import CLUSTER_SLOTS, RedisCluster


def test_the_cluster_has_three_masters_covering_every_slot(redis_cluster: RedisCluster) -> None:
    client = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
    try:
        primaries = client.get_primaries()
        assert sorted(node.port for node in primaries) == sorted(redis_cluster.ports)
        slots = client.cluster_slots()
        assert sum(end - start + 1 for start, end in slots) == CLUSTER_SLOTS
    finally:
        client.close()


async def test_the_url_chooses_the_client(redis_cluster_url: str, redis_url: str) -> None:
    assert is_cluster_url(redis_cluster_url) and not is_cluster_url(redis_url)
    cluster = connect_any_redis(redis_cluster_url)
    single = connect_any_redis(redis_url)
    try:
        assert isinstance(cluster, aioredis.RedisCluster)
        assert isinstance(single, aioredis.Redis)
        # Keys in many slots, written and read through the one client.
        for index in range(20):
            await cluster.set(f"key-{index}", index)
        assert [await cluster.get(f"key-{index}") for index in range(20)] == [
            str(index) for index in range(20)
        ]
    finally:
        await cluster.aclose()
        await single.aclose()
    with pytest.raises(ValueError, match="Redis Cluster URL"):
        connect_redis(redis_cluster_url)
