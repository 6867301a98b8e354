"""`emma demo` (the mesh with demo customers, a few decisions, rewards) and `emma load-demo`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from emma.cli.demo_moments import show_moments
from emma.cli.mesh import Mesh, MeshPorts, start_and_report
from emma.cli.signals import sigterm_as_interrupt
from emma.cli.table import format_table
from emma.demo import CUSTOMERS_PATH
from emma_client import Decision, EmmaClient, EmmaError

if TYPE_CHECKING:
    from emma.demo.customers import DemoCustomer, DemoData, Scenario

DECIDE_DEADLINE_S = 5.0
# Rounds over all scenarios of simulated responses; enough for the model to show learning.
LEARNING_ROUNDS = 40
# Rounds between two waits for the learner: the decision service then serves a model that
# learned every reward so far. Production replicas do not wait; the demo wants to show it.
ROUNDS_PER_MODEL = 4
# The demo's learner publishes and its decision service polls far more often than the
# production defaults, so a short demo sees many model versions. The learner learns a
# decision when its reward window closes (`sum` aggregation): the demo's responses come at
# once, so a one-second window lets it learn within a second instead of an hour.
DEMO_ENV = {
    "EMMA_LEARNER_PUBLISH_S": "0.2",
    "EMMA_MODEL_POLL_S": "0.1",
    "EMMA_REWARD_WINDOW_S": "1",
}
MODEL_POLL_S = 0.1
LEARNER_WAIT_S = 15.0
HEADERS = ("customer", "touchpoint", "store", "offer", "channel", "p", "degraded", "trace id")


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="start the mesh, load demo customers, show decisions, stop again",
        description="Starts the whole mesh on free ports with a private Redis, loads the "
        "demo customers, makes decisions for them at several touchpoints, prints them, "
        "sends a few rewards and stops everything.",
    )
    demo.add_argument(
        "--run-dir", type=Path, help="directory for the service logs (default: a new temp dir)"
    )
    demo.set_defaults(func=run_demo)

    load = commands.add_parser(
        "load-demo", help="load the demo customers into a running profile service"
    )
    load.add_argument(
        "--profile-address",
        default=os.environ.get("EMMA_PROFILE_ADDR", "127.0.0.1:50052"),
        help="profile service host:port (env EMMA_PROFILE_ADDR, default %(default)s)",
    )
    load.add_argument("--file", type=Path, default=CUSTOMERS_PATH, help="customers YAML file")
    load.set_defaults(func=run_load_demo)


def run_load_demo(args: argparse.Namespace) -> int:
    # Late import: the loader pulls in the profile package, which only this command needs.
    from emma.demo.loader import load_demo_customers

    try:
        summary = load_demo_customers(args.profile_address, args.file)
    except grpc.RpcError as error:
        print(f"emma load-demo: {error}", file=sys.stderr)
        return 1
    print(
        f"loaded {summary.customers} customers: {summary.events_accepted} events "
        f"({summary.events_duplicate} already known), {summary.identifiers_linked} identifiers"
    )
    return 0


def customers_by_identifier(data: DemoData) -> dict[str, DemoCustomer]:
    """ "loyalty_card:1001" -> anna, for every identifier written as in the scenarios."""
    known = {}
    for customer in data.customers:
        known[f"customer_id:{customer.customer_id}"] = customer
        for kind, value in customer.identifiers.items():
            known[f"{kind}:{value}"] = customer
    return known


def customer_names(data: DemoData) -> dict[str, str]:
    return {ref: customer.name for ref, customer in customers_by_identifier(data).items()}


def liked(customer: DemoCustomer, decision: Decision) -> bool:
    """The simulated customer's response: they click what matches their stated tastes."""
    preferences = customer.preferences
    return decision.category in preferences.get("liked_categories", ())


def decide(client: EmmaClient, scenario: Scenario) -> Decision:
    return client.decide(
        scenario.customer,
        touchpoint=scenario.touchpoint,
        store_id=scenario.store,
        basket=list(scenario.basket) or None,
    )


def decision_rows(
    data: DemoData, decisions: Sequence[tuple[Scenario, Decision]]
) -> list[tuple[str, ...]]:
    names = customer_names(data)
    return [
        (
            names.get(scenario.customer, scenario.customer),
            scenario.touchpoint,
            scenario.store or "-",
            decision.offer_id + (" (fallback)" if decision.fallback else ""),
            decision.channel,
            f"{decision.probability:.2f}",
            ",".join(decision.degraded) or "-",
            decision.trace_id or "-",
        )
        for scenario, decision in decisions
    ]


def run_scenarios(client: EmmaClient, data: DemoData) -> list[tuple[Scenario, Decision]]:
    """One decision per scenario."""
    return [(scenario, decide(client, scenario)) for scenario in data.scenarios]


def wait_for_learner(redis_url: str, updates: int, timeout_s: float = LEARNER_WAIT_S) -> str:
    """Waits until the learner published a model that learned `updates` rewards, then for
    the decision service to poll it; returns the model's version."""
    # Late import: reading snapshots pulls in Redis and the learner's format.
    import redis

    from emma.learner.snapshots import read_snapshot_sync

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            snapshot = read_snapshot_sync(client, "emma:model")
            if snapshot is not None and int(snapshot.meta.get("updates", 0)) >= updates:
                time.sleep(2 * MODEL_POLL_S)
                return snapshot.name
            if time.monotonic() > deadline:
                raise TimeoutError(f"the learner did not learn {updates} rewards in {timeout_s} s")
            time.sleep(0.05)
    finally:
        client.close()


def learn_from_simulated_responses(
    client: EmmaClient, data: DemoData, rounds: int, redis_url: str
) -> tuple[list[bool], str]:
    """Runs every scenario `rounds` times, rewarding what the customer likes (1) or not (0).

    Returns, in order, whether each decision matched the customer's tastes, so the demo
    can show the share rising as the learner learns through the public Reward RPC, and
    the version of the last model.
    """
    customers = customers_by_identifier(data)
    matched = []
    version = ""
    for round_ in range(1, rounds + 1):
        for scenario in data.scenarios:
            decision = decide(client, scenario)
            clicked = liked(customers[scenario.customer], decision)
            client.reward(
                decision.event_id, 1.0 if clicked else 0.0, "click" if clicked else "none"
            )
            matched.append(clicked)
        if round_ % ROUNDS_PER_MODEL == 0 or round_ == rounds:
            version = wait_for_learner(redis_url, len(matched))
    return matched, version


def share(flags: Sequence[bool]) -> str:
    return f"{100 * sum(flags) / max(1, len(flags)):.0f}%"


def run_demo(args: argparse.Namespace) -> int:
    from emma.demo.customers import load_demo_data
    from emma.demo.loader import load_demo_customers

    started = time.monotonic()
    data = load_demo_data()
    mesh = Mesh(ports=MeshPorts.free(), run_dir=args.run_dir, env=DEMO_ENV)
    try:
        with sigterm_as_interrupt():
            if not start_and_report(mesh, "demo", sys.stdout):
                return 1
            summary = load_demo_customers(mesh.profile_address)
            print(
                f"loaded {summary.customers} demo customers "
                f"({summary.events_accepted} events, {summary.identifiers_linked} identifiers)\n"
            )
            with EmmaClient(
                mesh.decision_address, deadline=DECIDE_DEADLINE_S, wait_for_ready=True
            ) as client:
                print("decisions of a model that has learned nothing yet:")
                print(format_table(HEADERS, decision_rows(data, run_scenarios(client, data))))
                assert mesh.redis_url is not None
                # Before the learning rounds, whose pushes use up the day's push cap.
                print()
                show_moments(
                    mesh.profile_address,
                    mesh.context_address,
                    mesh.decision_address,
                    mesh.redis_url,
                )
                matched, version = learn_from_simulated_responses(
                    client, data, LEARNING_ROUNDS, mesh.redis_url
                )
                window = len(data.scenarios) * 5
                print(
                    f"\n{len(matched)} more decisions, each rewarded 1 when the offer's category"
                    " is one the customer likes, else 0 (Reward RPC). The learner joins each"
                    " reward to its decision, trains and publishes models; the decision service"
                    f" swaps them in (now {version})."
                    f"\nliked offers: {share(matched[:window])} of the first {window} decisions,"
                    f" {share(matched[-window:])} of the last {window}.\n"
                )
                print("decisions after learning:")
                print(format_table(HEADERS, decision_rows(data, run_scenarios(client, data))))
    except (EmmaError, grpc.RpcError, TimeoutError) as error:
        print(f"emma demo: {error}; service logs in {mesh.run_dir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emma demo: interrupted", file=sys.stderr)
        return 130
    finally:
        mesh.stop()
    print(f"\nstopped everything; the demo took {time.monotonic() - started:.1f} s")
    return 0
