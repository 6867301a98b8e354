"""The SDK's examples (clients/python/examples) run as scripts against a real mesh."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from emma.cli.mesh import Mesh
from emma.runtime.redis_server import free_port
from emma_client import EmmaClient, ProfileClient
from emma_client.protos.emma.common.v1 import common_pb2
from emma_client.protos.emma.profile.v1 import profile_pb2, profile_pb2_grpc
from tests.clients.stack import InProcessStack, running_stack

EXAMPLES = Path(__file__).resolve().parents[2] / "clients" / "python" / "examples"
ANNA_CARD = "loyalty_card:1001"
# Generous deadlines: the first calls open connections on a possibly busy machine.
SLOW_MACHINE = ["--deadline", "10"]


def run_example(name: str, *args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def deliver_app_coupon(mesh: Mesh) -> tuple[str, str]:
    """Anna gets an app offer pushed and delivered: it opens in her wallet. (offer, decision)"""
    with EmmaClient(mesh.decision_address, deadline=10) as emma:
        decision = emma.decide(app_user_id="app-anna", touchpoint="app")
    assert decision.offer_id and not decision.fallback
    with grpc.insecure_channel(mesh.profile_address) as channel:
        shown = profile_pb2.OfferResponse(
            kind=profile_pb2.OFFER_RESPONSE_KIND_SHOWN,
            offer_id=decision.offer_id,
            decision_event_id=decision.event_id,
            channel=common_pb2.CHANNEL_PUSH,
        )
        event = profile_pb2.Event(
            event_id=f"delivered-{decision.event_id}",
            customer=common_pb2.CustomerRef(
                kind=common_pb2.IDENTIFIER_KIND_APP_USER_ID, value="app-anna"
            ),
            offer_response=shown,
        )
        profile_pb2_grpc.ProfileServiceStub(channel).RecordEvents(
            profile_pb2.RecordEventsRequest(events=[event]), timeout=10
        )
    return decision.offer_id, decision.event_id


def test_till_reminds_redeems_the_wallet_coupon_and_activates(client_mesh: Mesh) -> None:
    offer_id, event_id = deliver_app_coupon(client_mesh)
    with ProfileClient(client_mesh.profile_address, deadline=10) as profile:
        assert event_id in {held.event_id for held in profile.wallet(ANNA_CARD)}

    lines = run_example(
        "till.py",
        "emmentaler:cheese:1:4.99",
        "brezel:bakery:2:1.40",
        "--customer",
        ANNA_CARD,
        "--store",
        "berlin-mitte",
        "--receipt",
        "r-4711",
        "--decision-addr",
        client_mesh.decision_address,
        "--profile-addr",
        client_mesh.profile_address,
        *SLOW_MACHINE,
    )

    assert re.fullmatch(r"offer: \S+ \(.+\) on (cashier_prompt|receipt)", lines[0]), lines
    assert lines[1] == "degraded: -"
    assert any(line.startswith(f"remind the cashier: {offer_id} ") for line in lines), lines
    assert f"redeemed: {offer_id}" in lines
    assert any(line.startswith("receipt printed: activated ") for line in lines), lines
    assert lines[-1] == "purchase recorded: receipt r-4711"
    with ProfileClient(client_mesh.profile_address, deadline=10, connections=2) as profile:
        # Closed for every touchpoint: the app's view of the wallet no longer holds it.
        assert event_id not in {held.event_id for held in profile.wallet("app_user_id:app-anna")}


def test_app_backend_decides_for_every_customer_in_parallel(client_mesh: Mesh) -> None:
    lines = run_example(
        "app_backend.py",
        "app-anna",
        "app-ben",
        "app-nobody",
        "--decision-addr",
        client_mesh.decision_address,
        *SLOW_MACHINE,
    )

    assert [line.split(":")[0] for line in lines] == ["app-anna", "app-ben", "app-nobody"]
    for line in lines:
        assert re.fullmatch(r"app-\w+: show \S+ on (in_app|push) degraded=-", line), line


@pytest.fixture
def decision_without_dependencies() -> Iterator[InProcessStack]:
    """A decision service whose profile and context services are down."""
    with running_stack(dependencies_down=True) as stack:
        yield stack


def test_app_backend_uses_a_degraded_answer_with_care(
    decision_without_dependencies: InProcessStack,
) -> None:
    lines = run_example(
        "app_backend.py",
        "app-anna",
        "--decision-addr",
        decision_without_dependencies.decision_address,
        *SLOW_MACHINE,
    )

    (line,) = lines
    match = re.fullmatch(r"app-anna: (\S+) \S+ on (\S+) degraded=(\S+)", line)
    assert match, line
    action, channel, degraded = match.groups()
    assert "profile" in degraded.split(",")
    assert channel != "push"  # consent could not be read: never a consent-bound channel
    assert action == "show"


def test_app_backend_shows_house_content_when_emma_is_unreachable() -> None:
    lines = run_example(
        "app_backend.py",
        "app-anna",
        "--decision-addr",
        f"127.0.0.1:{free_port()}",
        "--deadline",
        "0.5",
    )

    # Retried with backoff until the deadline: whichever came first is named.
    (line,) = lines
    assert re.fullmatch(r"app-anna: house-content \(Decide (UNAVAILABLE|DEADLINE_EXCEEDED)\)", line)
