"""A Redis that forgot the scripts (restarted, failed over) gets them all back at once."""

from __future__ import annotations

import hashlib

from emma.profile.scripts import NAMES, load_sources
from emma.profile.store import ProfileStore
from emma.runtime.redis_client import RedisClient
from tests.profile.builders import cid, purchase
from tests.profile.conftest import DAY, NOW


async def test_calls_alone_and_batched_load_the_scripts_again(
    store: ProfileStore, client: RedisClient
) -> None:
    anna, ben = cid("anna"), cid("ben")
    first = [
        purchase(f"e{i}", who, NOW, ("gouda", "cheese", 2.0)) for i, who in enumerate((anna, ben))
    ]
    assert (await store.record_events(first, NOW)).accepted == 2

    await client.script_flush()
    # Two customers: one pipeline of script calls, each meeting NOSCRIPT.
    later = [
        purchase(f"f{i}", who, NOW + DAY, ("brot", "bakery", 3.0))
        for i, who in enumerate((anna, ben))
    ]
    assert (await store.record_events(later, NOW + DAY)).accepted == 2

    await client.script_flush()
    # One call alone.
    profile = await store.get_profile(anna, NOW + DAY)
    assert profile is not None and profile.rfm.purchase_count == 2

    # Every script is back, not only those the calls needed.
    shas = [hashlib.sha1(source.encode()).hexdigest() for source in load_sources().values()]
    assert await client.script_exists(*shas) == [True] * len(NAMES)
