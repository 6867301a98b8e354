"""Clients with several connections: each call takes the least busy one (ties in turn), so
a service's worker processes on one port (each given whole connections by the kernel) all
get calls, and one that falls behind gets fewer."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from emma.decision.v1 import decision_pb2
from emma_client import AsyncEmmaClient, EmmaClient, ProfileClient
from emma_client.base import WORKER_HEADER, LeastBusy
from tests.clients.fake_decision import ScriptedDecisionService, serving


def _in_turn(peers: list[str], connections: int) -> None:
    """Each of `connections` distinct callers once per round, in the same order."""
    first = peers[:connections]
    assert len(set(first)) == connections, peers
    assert peers == first * (len(peers) // connections), peers


@pytest.mark.parametrize("connections", [1, 3])
def test_sync_calls_one_after_another_take_the_connections_in_turn(connections: int) -> None:
    service = ScriptedDecisionService()
    with serving(service) as address, EmmaClient(address, connections=connections) as client:
        for _ in range(2):
            client.decide("customer_id:c-1", touchpoint="pos", store_id="berlin-mitte")
            client.reward("ev-1", 1.0)
            client.activate("ev-1")
    _in_turn(service.peers, connections)


async def _decide_one_after_another(service: ScriptedDecisionService, calls: int) -> None:
    """`calls` Decide calls, each awaited before the next, over four asyncio connections."""
    with serving(service) as address:
        async with AsyncEmmaClient(address, connections=4) as client:
            for _ in range(calls):
                await client.decide("customer_id:c-1", touchpoint="app")


async def test_async_calls_one_after_another_take_the_connections_in_turn() -> None:
    service = ScriptedDecisionService()
    await _decide_one_after_another(service, 8)
    _in_turn(service.peers, 4)


@pytest.mark.parametrize("connections", [0, -1, 65])
def test_a_number_of_connections_out_of_range_is_refused(connections: int) -> None:
    for client in (EmmaClient, AsyncEmmaClient, ProfileClient):
        with pytest.raises(ValueError, match=r"connections must be 1\.\.64"):
            client("127.0.0.1:1", connections=connections)


def test_the_least_busy_connection_is_taken_and_ties_go_round() -> None:
    connections = LeastBusy(["a", "b", "c"])
    with connections.use() as first, connections.use() as second:
        assert (first.item, second.item) == ("a", "b")
        with connections.use() as third:
            assert third.item == "c"
        assert connections.in_flight() == [1, 1, 0]
        with connections.use() as free:
            assert free.item == "c"  # the only one without a call in flight
    assert connections.in_flight() == [0, 0, 0]
    # Nothing in flight: each call starts one further round.
    taken = []
    for _ in range(6):
        with connections.use() as slot:
            taken.append(slot.item)
    assert sorted(taken) == ["a", "a", "b", "b", "c", "c"]


def _named(connections: LeastBusy[str], workers: list[str]) -> None:
    for _ in workers:
        with connections.use() as slot:
            slot.answered_by(workers[connections.items.index(slot.item)])


def test_calls_go_to_workers_in_turn_whatever_their_number_of_connections() -> None:
    # Three connections reach worker A, one reaches worker B.
    connections = LeastBusy(["a1", "a2", "a3", "b1"])
    _named(connections, ["A", "A", "A", "B"])
    assert connections.workers() == ["A", "A", "A", "B"]
    taken = []
    for _ in range(8):
        with connections.use() as slot:
            taken.append(slot.item)
    # Counted per connection, B would get 2 of 8.
    assert [item[0] for item in taken].count("b") == 4, taken
    assert set(taken) == {"a1", "a2", "a3", "b1"}, "a worker's connections take turns"


def test_calls_in_flight_count_for_the_worker_not_the_connection() -> None:
    connections = LeastBusy(["a1", "a2", "b1"])
    _named(connections, ["A", "A", "B"])
    with connections.use() as first, connections.use() as second:
        # One call at each worker.
        assert {first.item[0], second.item[0]} == {"a", "b"}
        with connections.use() as third, connections.use() as fourth:
            # One more at each: a2 was free before b1 was, but B had fewer in flight.
            assert {third.item[0], fourth.item[0]} == {"a", "b"}
            # Within a worker, its least busy connection.
            at_a = {slot.item for slot in (first, second, third, fourth) if slot.item[0] == "a"}
            assert at_a == {"a1", "a2"}
            assert sorted(connections.in_flight()) == [1, 1, 2]


def test_a_connection_that_reaches_another_worker_counts_for_it() -> None:
    connections = LeastBusy(["x", "y"])
    _named(connections, ["A", "B"])
    with connections.use() as slot:
        held = slot.item
        # Replaced by the server's connection age: the new connection reached the other worker.
        slot.answered_by("B" if held == "x" else "A")
        assert connections.workers() in (["B", "B"], ["A", "A"])
        with connections.use() as other:
            # The only worker left has this call in flight over `held`: the least busy
            # connection is the other one.
            assert other.item != held
    assert connections.in_flight() == [0, 0]
    # A worker no connection reaches is forgotten.
    with connections.use() as slot:
        pass
    assert len(set(connections.workers())) == 1


class FirstConnectionApart(ScriptedDecisionService):
    """Treats the connection of the first call it sees (`first_peer`) apart from the
    others (`treat`) before answering."""

    def __init__(self) -> None:
        super().__init__()
        self.first_peer: str | None = None

    def treat(self, context: grpc.ServicerContext, first: bool) -> None:
        raise NotImplementedError

    def Decide(
        self, request: decision_pb2.DecideRequest, context: grpc.ServicerContext
    ) -> decision_pb2.DecideResponse:
        self.first_peer = self.first_peer or context.peer()
        self.treat(context, context.peer() == self.first_peer)
        return super().Decide(request, context)


class SlowFirstConnection(FirstConnectionApart):
    """Answers the first connection after 100 ms, every other at once: a worker that has
    fallen behind."""

    def treat(self, context: grpc.ServicerContext, first: bool) -> None:
        if first:
            time.sleep(0.1)


async def test_a_connection_that_answers_slowly_gets_fewer_calls() -> None:
    service = SlowFirstConnection()
    with serving(service) as address:
        async with AsyncEmmaClient(address, connections=2) as client:
            calls = []
            for _ in range(40):  # one every 5 ms, without waiting for the answers
                calls.append(
                    asyncio.create_task(client.decide("customer_id:c-1", touchpoint="app"))
                )
                await asyncio.sleep(0.005)
            await asyncio.gather(*calls)
    assert len(set(service.peers)) == 2
    # Taking turns would give it 20: it gets a call only when it has none in flight.
    assert service.peers.count(service.first_peer) <= 8, service.peers


class TwoWorkers(FirstConnectionApart):
    """Names the first connection's worker "one", every other's "two": a service whose two
    worker processes got one connection and the rest."""

    def treat(self, context: grpc.ServicerContext, first: bool) -> None:
        context.set_trailing_metadata(((WORKER_HEADER, "one" if first else "two"),))


def test_sync_calls_one_after_another_go_to_each_worker_in_turn() -> None:
    service = TwoWorkers()
    with serving(service) as address, EmmaClient(address, connections=4) as client:
        for _ in range(20):
            client.decide("customer_id:c-1", touchpoint="pos", store_id="berlin-mitte")
    # The first round names each connection's worker; then the workers take turns.
    # Counted per connection, worker "one" would get 4 of the last 16.
    assert service.peers[4:].count(service.first_peer) == 8, service.peers
    assert len(set(service.peers)) == 4


async def test_async_calls_one_after_another_go_to_each_worker_in_turn() -> None:
    service = TwoWorkers()
    await _decide_one_after_another(service, 20)
    assert service.peers[4:].count(service.first_peer) == 8, service.peers
