"""The decision log through a Redis outage: failed writes are buffered and written in order.

Each test starts its own redis-server (never the session's), stops it and starts it again
on the same port: an empty server, so the stream holds exactly what was written after.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
import redis
import redis.asyncio as aioredis
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from emma.decision.bandit import Bandit
from emma.decision.catalog import load_catalog
from emma.decision.config import DEFAULT_CATALOG, DEFAULT_VW_ARGS
from emma.decision.contacts import ContactGate, ContactStore
from emma.decision.decision_log import DecisionStore, EncodedDecision, LoggedDecision
from emma.decision.domain import Channel, CustomerView, DecideInput, Situation
from emma.decision.log_buffer import LogBuffer
from emma.decision.pipeline import Decider, Decision, Degraded, PipelineSettings
from emma.learner.join import entry_ms
from emma.runtime.privacy import pseudonymise
from emma.runtime.redis_client import connect_redis
from emma.runtime.redis_server import RedisServer

from .helpers import JUNE_MORNING, customer, request, situation

STREAM = "emma:decisions"
CONTACTS = "emma:contacts"
# Generous: waiting for the buffer to catch up must not fail on a loaded machine.
CATCH_UP_S = 30.0


class Dependencies:
    """Profile and context that always answer: only the log's Redis fails here."""

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        return customer(marketing_all=True)

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        return situation()

    def cached_situation(self, request: DecideInput) -> Situation | None:
        return None


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone, which the test may stop and start again."""
    server = RedisServer(extra_args=("--enable-debug-command", "yes")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def client(own_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(own_redis.url)
    yield client
    await client.aclose()


def decider(
    client: aioredis.Redis, buffer: LogBuffer | None, *, capped: bool = False
) -> tuple[Decider, DecisionStore]:
    """A pipeline logging to `client`; `capped` counts contacts there too, and writes a
    capped contact's log entry in its reservation's round trip, as the server does."""
    store = DecisionStore(client, STREAM, "emma:rewards", maxlen=10_000, window_s=60.0)
    contacts = ContactGate(ContactStore(client, CONTACTS, 3600), encode=store.encode)
    pipeline = Decider(
        load_catalog(DEFAULT_CATALOG),
        Bandit(DEFAULT_VW_ARGS),
        Dependencies(),
        store,
        PipelineSettings(
            budget_s=0.05, max_actions=50, default_time_zone="Europe/Berlin", log_timeout_s=0.02
        ),
        log_buffer=buffer,
        contacts=contacts if capped else None,
    )
    return pipeline, store


def restart(server: RedisServer) -> RedisServer:
    """A new, empty redis-server on the stopped one's port."""
    return RedisServer(port=server.port, extra_args=server.extra_args).start()


async def logged_event_ids(url: str) -> list[str]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        entries = await client.xrange(STREAM)
    finally:
        await client.aclose()
    return [fields["event_id"] for _, fields in entries]


async def caught_up(buffer: LogBuffer) -> None:
    async with asyncio.timeout(CATCH_UP_S):
        await buffer.drained()
    assert not buffer.waiting


async def back_and_caught_up(server: RedisServer, buffer: LogBuffer) -> list[str]:
    """Starts Redis again on the stopped one's port, waits until the buffer caught up and
    returns the event ids the log then holds; that Redis is stopped again after."""
    back = restart(server)
    try:
        await caught_up(buffer)
        return await logged_event_ids(back.url)
    finally:
        back.stop()


async def decide(pipeline: Decider, count: int) -> list[Decision]:
    return [await pipeline.decide(request(customer_value=f"c-{i}")) for i in range(count)]


async def test_decisions_answered_while_redis_is_down_are_logged_in_order_after(
    own_redis: RedisServer, client: aioredis.Redis
) -> None:
    _, store = decider(client, None)
    buffer = LogBuffer(store, 100)
    pipeline, _ = decider(client, buffer)
    before = await decide(pipeline, 2)
    assert await logged_event_ids(own_redis.url) == [d.event_id for d in before]
    assert not buffer.waiting  # a healthy Redis is written directly

    own_redis.stop()
    during = await decide(pipeline, 20)
    assert all(Degraded.DECISION_LOG not in d.degraded for d in during)
    assert len(buffer) == 20 and buffer.dropped == 0

    back = restart(own_redis)
    try:
        await caught_up(buffer)
        after = await decide(pipeline, 2)
        logged = await logged_event_ids(back.url)
    finally:
        back.stop()
    # The outage's decisions, as answered, then the ones after it: nothing lost, in order.
    assert logged == [d.event_id for d in during + after]
    assert buffer.dropped == 0


async def test_a_full_buffer_drops_the_entry_and_the_answer_says_so(
    own_redis: RedisServer, client: aioredis.Redis
) -> None:
    _, store = decider(client, None)
    buffer = LogBuffer(store, 3)
    pipeline, _ = decider(client, buffer)
    own_redis.stop()
    during = await decide(pipeline, 5)
    flagged = [Degraded.DECISION_LOG in d.degraded for d in during]
    assert flagged == [False, False, False, True, True]
    assert len(buffer) == 3 and buffer.dropped == 2

    assert await back_and_caught_up(own_redis, buffer) == [d.event_id for d in during[:3]]


async def test_without_a_buffer_a_failed_write_is_flagged(
    own_redis: RedisServer, client: aioredis.Redis
) -> None:
    pipeline, _ = decider(client, None)
    own_redis.stop()
    (decision,) = await decide(pipeline, 1)
    assert Degraded.DECISION_LOG in decision.degraded


async def test_a_write_that_timed_out_in_a_stalled_redis_is_logged_and_not_flagged(
    own_redis: RedisServer, client: aioredis.Redis
) -> None:
    _, store = decider(client, None)
    buffer = LogBuffer(store, 100)
    pipeline, _ = decider(client, buffer)
    await decide(pipeline, 1)  # connected
    stall = asyncio.create_task(asyncio.to_thread(_stall, own_redis.port, 1.0))
    await asyncio.sleep(0.2)  # the stall has begun: DEBUG SLEEP blocks the whole server
    during = await decide(pipeline, 3)
    assert buffer.waiting  # the 20 ms write timed out
    await stall
    await caught_up(buffer)
    assert all(Degraded.DECISION_LOG not in d.degraded for d in during)
    logged = await logged_event_ids(own_redis.url)
    # Redis may also have run the timed-out write: a repeat the learner drops.
    assert {d.event_id for d in during} <= set(logged)
    first_seen = list(dict.fromkeys(logged))
    assert [e for e in first_seen if e in {d.event_id for d in during}] == [
        d.event_id for d in during
    ]


def _stall(port: int, seconds: float) -> None:
    with redis.Redis(port=port) as stalling:
        stalling.execute_command("DEBUG", "SLEEP", seconds)


async def test_close_writes_what_is_buffered_or_counts_it_lost(
    own_redis: RedisServer, client: aioredis.Redis
) -> None:
    _, store = decider(client, None)
    buffer = LogBuffer(store, 100)
    pipeline, _ = decider(client, buffer)
    own_redis.stop()
    during = await decide(pipeline, 4)
    back = restart(own_redis)
    try:
        # Shutdown with Redis back: everything is written before the process ends.
        assert await buffer.close(5.0) == 0
        assert await logged_event_ids(back.url) == [d.event_id for d in during]
    finally:
        back.stop()

    away = LogBuffer(store, 100)
    pipeline, _ = decider(client, away)
    await decide(pipeline, 2)
    # Shutdown with Redis still away: the entries are lost, counted, and no more are taken.
    assert await away.close(0.2) == 2
    assert away.dropped == 2 and not away.waiting
    (late,) = await decide(pipeline, 1)
    assert Degraded.DECISION_LOG in late.degraded


async def test_a_capped_decision_queues_behind_the_buffered_ones(
    own_redis: RedisServer, client: aioredis.Redis
) -> None:
    _, store = decider(client, None)
    # Retries far apart: Redis is back while the entries still wait, and close() writes them.
    buffer = LogBuffer(store, 100, retry_s=(600.0, 600.0))
    pipeline, _ = decider(client, buffer, capped=True)
    own_redis.stop()
    # The counters are down too: nothing capped is sent, an in-app offer is, and buffered.
    during = await decide(pipeline, 3)
    assert all(Degraded.POLICY in d.degraded and d.channel is Channel.IN_APP for d in during)
    assert all(Degraded.DECISION_LOG not in d.degraded for d in during)

    back = restart(own_redis)
    try:
        push = request(allowed_channels=frozenset({Channel.PUSH}))
        assert buffer.waiting
        # The push's contact is reserved, and its entry queues behind the outage's entries
        # instead of going with the reservation.
        after = await pipeline.decide(push)
        assert await buffer.close(5.0) == 0
        logged = await logged_event_ids(back.url)
        subject = pseudonymise(push.customer_value)
        members = await client.zrange(f"{CONTACTS}:{{{subject}}}", 0, -1)
    finally:
        back.stop()
    assert after.channel is Channel.PUSH and after.degraded == ()
    assert logged == [d.event_id for d in [*during, after]]
    assert f"push|{after.event_id}" in members


async def test_an_outcome_of_a_buffered_decision_lands_after_its_entry(
    own_redis: RedisServer, client: aioredis.Redis
) -> None:
    _, store = decider(client, None)
    # Retries far apart: only the reward's own call cuts the wait short.
    buffer = LogBuffer(store, 100, retry_s=(600.0, 600.0))
    store.settle_log = functools.partial(buffer.settle, CATCH_UP_S)
    pipeline, _ = decider(client, buffer)
    own_redis.stop()
    (decision,) = await decide(pipeline, 1)
    await asyncio.sleep(0.2)  # the buffer tries once, finds Redis away and waits
    back = restart(own_redis)
    try:
        # The reward makes the buffer try again at once and waits for it: the decision is
        # known, and the reward's entry comes after the decision's, where the learner joins it.
        assert await store.reward(decision.event_id, 1.0, "click", JUNE_MORNING, "k1")
        logged = await client.xrange(STREAM)
        rewards = await client.xrange("emma:rewards")
    finally:
        back.stop()
    assert [fields["event_id"] for _, fields in logged] == [decision.event_id]
    assert [fields["event_id"] for _, fields in rewards] == [decision.event_id]
    assert entry_ms(rewards[0][0]) >= entry_ms(logged[0][0])


class CountingStore(DecisionStore):
    """The service's store, counting what the buffer asks of it."""

    def __init__(self, client: aioredis.Redis) -> None:
        super().__init__(client, STREAM, "emma:rewards", maxlen=10_000, window_s=60.0)
        self.encoded = 0
        self.batches: list[int] = []

    def encode(self, decision: LoggedDecision) -> EncodedDecision:
        self.encoded += 1
        return super().encode(decision)

    async def append_encoded(self, entries: Sequence[EncodedDecision]) -> None:
        self.batches.append(len(entries))
        await super().append_encoded(entries)


async def test_while_redis_is_away_each_attempt_sends_one_entry_encoded_once(
    own_redis: RedisServer, client: aioredis.Redis
) -> None:
    counting = CountingStore(client)
    buffer = LogBuffer(counting, 100, batch=10, retry_s=(0.005, 0.005))
    pipeline, _ = decider(client, buffer)
    own_redis.stop()
    during = await decide(pipeline, 30)
    await asyncio.sleep(0.2)  # many attempts while Redis is away
    attempts_away = len(counting.batches)
    assert attempts_away >= 5
    # The first write that fails finds Redis away: every later attempt probes with one.
    assert counting.batches[1:] == [1] * (attempts_away - 1)

    assert await back_and_caught_up(own_redis, buffer) == [d.event_id for d in during]
    # Probes of one entry until one got through, then the other 29 in full batches.
    assert set(counting.batches[1:-3]) == {1}
    assert counting.batches[-3:] == [10, 10, 9]
    # Each entry was encoded when it was kept, never again for a retry.
    assert counting.encoded == 30


async def test_the_buffer_writes_outside_the_trace_of_the_decision_that_started_it(
    own_redis: RedisServer, client: aioredis.Redis, spans: InMemorySpanExporter
) -> None:
    _, store = decider(client, None)
    buffer = LogBuffer(store, 100)
    pipeline, _ = decider(client, buffer)
    own_redis.stop()
    during = await decide(pipeline, 3)
    assert await back_and_caught_up(own_redis, buffer) == [d.event_id for d in during]
    finished = spans.get_finished_spans()
    decisions = {s.context.trace_id for s in finished if s.name == "emma.decision.log"}
    writes = [s for s in finished if s.name.startswith("XADD")]
    assert decisions and writes
    # Catching up is the buffer's own work: a root of its own, not a child of whichever
    # decision happened to start it (its waterfall would show the whole outage).
    assert all(s.parent is None for s in writes)
    assert not {s.context.trace_id for s in writes} & decisions
