"""`emma load-demo` fills a real profile service; loading twice changes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest

from emma.cli.main import main
from emma.common.v1 import common_pb2
from emma.demo import loader
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma_client import customer_ref
from tests.clients.stack import InProcessStack, running_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[InProcessStack]:
    with running_stack() as stack:
        yield stack


def profile_of(address: str, customer: str) -> profile_pb2.GetProfileResponse:
    with grpc.insecure_channel(address) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        request = profile_pb2.GetProfileRequest(customer=customer_ref(customer))
        return stub.GetProfile(request, timeout=10)


def test_load_demo_twice(stack: InProcessStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load-demo", "--profile-address", stack.profile_address]) == 0
    assert "loaded 5 customers: 17 events (0 already known), 7 identifiers" in (
        capsys.readouterr().out
    )
    assert main(["load-demo", "--profile-address", stack.profile_address]) == 0
    assert "0 events (17 already known)" in capsys.readouterr().out

    # Anna is found by her loyalty card, with the tastes and consent of customers.yaml.
    anna = profile_of(stack.profile_address, "loyalty_card:1001")
    assert anna.found
    assert anna.profile.customer_id == "c-anna"
    assert list(anna.profile.preferences.disliked_products) == ["gouda"]
    assert anna.profile.rfm.purchase_count == 3
    assert anna.profile.category_affinities[0].key == "cheese"
    granted = {
        (c.purpose, c.channel)
        for c in anna.profile.consents
        if c.status == profile_pb2.CONSENT_STATUS_GRANTED
    }
    assert (profile_pb2.PURPOSE_MARKETING, common_pb2.CHANNEL_PUSH) in granted

    # Clara's e-mail was linked hashed; David is a bakery regular; Emil stays unknown.
    digest = hashlib.sha256(b"clara@example.org").hexdigest()
    clara = profile_of(stack.profile_address, f"email_sha256:{digest}")
    assert clara.profile.customer_id == "c-clara"
    david = profile_of(stack.profile_address, "loyalty_card:1004")
    assert david.profile.category_affinities[0].key == "bakery"
    assert not profile_of(stack.profile_address, "customer_id:c-emil").found


def test_load_demo_reports_an_unreachable_profile_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "CALL_TIMEOUT_S", 0.5)
    assert main(["load-demo", "--profile-address", "127.0.0.1:1"]) == 1
    assert "emma load-demo:" in capsys.readouterr().err
