"""Clients with several connections: each call takes the next, so a service's worker
processes on one port (each given whole connections by the kernel) all get calls."""

from __future__ import annotations

import pytest

from emma_client import AsyncEmmaClient, EmmaClient, ProfileClient
from tests.clients.fake_decision import ScriptedDecisionService, serving


def _in_turn(peers: list[str], connections: int) -> None:
    """Each of `connections` distinct callers once per round, in the same order."""
    first = peers[:connections]
    assert len(set(first)) == connections, peers
    assert peers == first * (len(peers) // connections), peers


@pytest.mark.parametrize("connections", [1, 3])
def test_sync_calls_take_the_connections_in_turn(connections: int) -> None:
    service = ScriptedDecisionService()
    with serving(service) as address, EmmaClient(address, connections=connections) as client:
        for _ in range(2):
            client.decide("customer_id:c-1", touchpoint="pos", store_id="berlin-mitte")
            client.reward("ev-1", 1.0)
            client.activate("ev-1")
    _in_turn(service.peers, connections)


async def test_async_calls_take_the_connections_in_turn() -> None:
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
