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
from emma_client.base import LeastBusy
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


async def test_async_calls_one_after_another_take_the_connections_in_turn() -> None:
    service = ScriptedDecisionService()
    with serving(service) as address:
        async with AsyncEmmaClient(address, connections=4) as client:
            for _ in range(8):
                await client.decide("customer_id:c-1", touchpoint="app")
    _in_turn(service.peers, 4)


@pytest.mark.parametrize("connections", [0, -1, 65])
def test_a_number_of_connections_out_of_range_is_refused(connections: int) -> None:
    for client in (EmmaClient, AsyncEmmaClient, ProfileClient):
        with pytest.raises(ValueError, match=r"connections must be 1\.\.64"):
            client("127.0.0.1:1", connections=connections)


def test_the_least_busy_connection_is_taken_and_ties_go_round() -> None:
    connections = LeastBusy(["a", "b", "c"])
    with connections.use() as first, connections.use() as second:
        assert (first, second) == ("a", "b")
        with connections.use() as third:
            assert third == "c"
        assert connections.in_flight() == [1, 1, 0]
        with connections.use() as free:
            assert free == "c"  # the only one without a call in flight
    assert connections.in_flight() == [0, 0, 0]
    # Nothing in flight: each call starts one further round.
    taken = []
    for _ in range(6):
        with connections.use() as item:
            taken.append(item)
    assert sorted(taken) == ["a", "a", "b", "b", "c", "c"]


class SlowFirstConnection(ScriptedDecisionService):
    """Answers the connection of the first call it sees after 100 ms, every other at once:
    a worker that has fallen behind."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_peer: str | None = None

    def Decide(
        self, request: decision_pb2.DecideRequest, context: grpc.ServicerContext
    ) -> decision_pb2.DecideResponse:
        self.slow_peer = self.slow_peer or context.peer()
        if context.peer() == self.slow_peer:
            time.sleep(0.1)
        return super().Decide(request, context)


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
    assert service.peers.count(service.slow_peer) <= 8, service.peers
