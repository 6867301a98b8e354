"""Erasure across the mesh as `emma up` runs it (processes, a private Redis): the decision
replica that should forget the contacts is killed, another replica claims the erasure."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import redis

from emma.cli.health import wait_serving
from emma.cli.mesh import SERVICE_NAMES, Mesh, MeshPorts
from emma.common.v1 import common_pb2
from emma.decision.config import DecisionConfig
from emma.profile.outbox import Erasure
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma_client import EmmaClient

CONFIG = DecisionConfig()
CUSTOMER = common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_APP_USER_ID, value="erase-me")


def eventually(check: Callable[[], bool], within_s: float = 60.0) -> None:
    """Waits for the services (the bound only stops a hang; this is no speed test)."""
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.1)


def contact_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter(f"{CONFIG.contact_key_prefix}:{{*"))


def erasure_entries(client: redis.Redis) -> list[object]:
    entries = client.xrange(CONFIG.profile_events_stream)
    return [e for e in entries if Erasure.of_entry(e[1]) is not None]  # type: ignore[union-attr]


def test_a_killed_replica_s_erasure_is_claimed_and_a_decide_starts_fresh(tmp_path: Path) -> None:
    env = {"EMMA_ERASURE_CLAIM_IDLE_S": "0.5", "OTEL_TRACES_EXPORTER": "none"}
    # A loaded machine (tests side by side) may take long to start the mesh.
    with Mesh(ports=MeshPorts.free(), env=env, run_dir=tmp_path, startup_timeout=120) as mesh:
        assert mesh.redis_url is not None
        client = redis.Redis.from_url(mesh.redis_url)
        channel = grpc.insecure_channel(mesh.profile_address)
        profile = profile_pb2_grpc.ProfileServiceStub(channel)
        try:
            seen = profile_pb2.Event(
                event_id="erase-me-1",
                customer=CUSTOMER,
                interaction=profile_pb2.Interaction(
                    kind=profile_pb2.INTERACTION_KIND_VIEW, product_id="brezel", category="bakery"
                ),
            )
            profile.RecordEvents(profile_pb2.RecordEventsRequest(events=[seen]))
            with EmmaClient(mesh.decision_address, deadline=5.0) as emma:
                # A fresh replica's first contact read may outlast its short Redis timeout
                # on a loaded machine (the decision then keeps no record): ask again.
                for _ in range(20):
                    emma.decide(("app_user_id", "erase-me"), touchpoint="app")
                    if contact_keys(client):
                        break
                    time.sleep(0.1)
            assert contact_keys(client) != []

            # The only decision replica dies; the erasure waits on the stream.
            replica = mesh.children["decision"].process
            replica.kill()
            replica.wait(timeout=10)
            erased = profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=CUSTOMER))
            assert erased.erased
            # A replica had taken it and died before finishing.
            taken = client.xreadgroup(
                CONFIG.erasure_group, "crashed", {CONFIG.profile_events_stream: ">"}
            )
            assert taken
            assert contact_keys(client) != []

            # A new replica (on the same port) claims it once idle, and forgets the contacts.
            mesh._spawn("decision")
            assert wait_serving(mesh.decision_address, SERVICE_NAMES["decision"], 120.0)
            eventually(lambda: contact_keys(client) == [])
            # The trigger engine has erased its part too: the entry is gone.
            eventually(lambda: erasure_entries(client) == [])
            assert (
                client.xpending(CONFIG.profile_events_stream, CONFIG.erasure_group)["pending"] == 0
            )

            with EmmaClient(mesh.decision_address, deadline=5.0) as emma:
                fresh = emma.decide(("app_user_id", "erase-me"), touchpoint="app")
            assert fresh.open_offers == ()
            found = profile.GetProfile(profile_pb2.GetProfileRequest(customer=CUSTOMER))
            assert not found.found
        finally:
            channel.close()
            client.close()
