"""Demo customers, loaded through the profile RPCs, get decisions that differ by who and where."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emma.cli.mesh import Mesh
from emma.demo.customers import load_demo_data
from emma_client import Decision, EmmaClient

TILL_CHANNELS = {"receipt", "cashier_prompt", "store_screen"}
# Channels that reach out to the customer: they need marketing consent.
MARKETING_CHANNELS = {"push", "email", "sms"}
# Generous, so that a busy test machine shows policy, not degraded fallbacks.
BUDGET_MS = 2000


@pytest.fixture(scope="module")
def client(mesh: Mesh) -> Iterator[EmmaClient]:
    with EmmaClient(mesh.decision_address, deadline=10) as client:
        yield client


def decide_many(client: EmmaClient, customer: str, times: int, **options: str) -> list[Decision]:
    return [
        client.decide(customer, budget_ms=BUDGET_MS, **options)  # type: ignore[arg-type]
        for _ in range(times)
    ]


def test_every_demo_scenario_gets_a_real_decision(client: EmmaClient) -> None:
    for scenario in load_demo_data().scenarios:
        decision = client.decide(
            scenario.customer,
            touchpoint=scenario.touchpoint,
            store_id=scenario.store,
            basket=list(scenario.basket) or None,
            budget_ms=BUDGET_MS,
        )
        assert decision.offer_id, scenario
        assert decision.channel, scenario
        assert not decision.fallback, scenario
        assert decision.degraded == (), scenario
        assert 0 < decision.probability <= 1
        assert client.reward(decision.event_id, 1.0, "click") is True


def test_the_touchpoint_decides_the_channels(client: EmmaClient) -> None:
    at_till = decide_many(client, "loyalty_card:1001", 8, touchpoint="pos", store_id="berlin-mitte")
    in_app = decide_many(client, "loyalty_card:1001", 8, touchpoint="app")
    on_web = decide_many(client, "loyalty_card:1001", 8, touchpoint="web")
    assert {d.channel for d in at_till} <= TILL_CHANNELS
    assert not {d.channel for d in in_app} & TILL_CHANNELS
    assert not {d.channel for d in on_web} & TILL_CHANNELS
    assert {d.channel for d in in_app} != {d.channel for d in on_web}


def test_the_customer_decides_offers_and_channels(client: EmmaClient) -> None:
    anna = decide_many(client, "app_user_id:app-anna", 15, touchpoint="app")
    ben = decide_many(client, "app_user_id:app-ben", 15, touchpoint="app")
    emil = decide_many(client, "customer_id:c-emil", 15, touchpoint="app")
    # Anna dislikes Gouda: she never gets the Gouda offer.
    assert "gouda-2for1" not in {d.offer_id for d in anna}
    # Ben denied marketing and Emil never consented: nothing reaches out to them.
    assert not {d.channel for d in ben} & MARKETING_CHANNELS
    assert not {d.channel for d in emil} & MARKETING_CHANNELS
    # Anna welcomes push and e-mail: she has more actions to choose from, and some reach out.
    assert min(d.candidate_count for d in anna) > max(d.candidate_count for d in emil)
    assert {d.channel for d in anna} & MARKETING_CHANNELS


def test_a_new_customer_is_decided_for_without_errors(client: EmmaClient) -> None:
    decision = client.decide("customer_id:c-never-seen", touchpoint="web", budget_ms=BUDGET_MS)
    assert decision.offer_id
    assert decision.channel == "web"
