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

from emma.cli.mesh import Mesh, MeshError, MeshPorts
from emma.cli.signals import sigterm_as_interrupt
from emma.cli.table import format_table
from emma.demo import CUSTOMERS_PATH
from emma_client import Decision, EmmaClient, EmmaError

if TYPE_CHECKING:
    from emma.demo.customers import DemoData, Scenario

DECIDE_DEADLINE_S = 5.0
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


def customer_names(data: DemoData) -> dict[str, str]:
    """ "loyalty_card:1001" -> "anna", for every identifier written as in the scenarios."""
    known = {}
    for customer in data.customers:
        known[f"customer_id:{customer.customer_id}"] = customer.name
        for kind, value in customer.identifiers.items():
            known[f"{kind}:{value}"] = customer.name
    return known


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


def run_scenarios(
    address: str, data: DemoData
) -> tuple[list[tuple[Scenario, Decision]], list[tuple[Decision, bool]]]:
    """Every scenario's decision, then a reward for every other one (as if clicked)."""
    decisions = []
    rewards = []
    with EmmaClient(address, deadline=DECIDE_DEADLINE_S, wait_for_ready=True) as client:
        # The first call opens the service's connections to profile and context; a cold
        # start should not show up as a degraded first decision in the table.
        decide(client, data.scenarios[0])
        for scenario in data.scenarios:
            decisions.append((scenario, decide(client, scenario)))
        for _, decision in decisions[::2]:
            rewards.append((decision, client.reward(decision.event_id, 1.0, "click")))
    return decisions, rewards


def run_demo(args: argparse.Namespace) -> int:
    from emma.demo.customers import load_demo_data
    from emma.demo.loader import load_demo_customers

    started = time.monotonic()
    data = load_demo_data()
    mesh = Mesh(ports=MeshPorts.free(), run_dir=args.run_dir)
    try:
        with sigterm_as_interrupt():
            print("starting Redis, profile, context and decision ...", flush=True)
            mesh.start()
            print(f"mesh up in {time.monotonic() - started:.1f} s; logs in {mesh.run_dir}")
            summary = load_demo_customers(mesh.profile_address)
            print(
                f"loaded {summary.customers} demo customers "
                f"({summary.events_accepted} events, {summary.identifiers_linked} identifiers)\n"
            )
            decisions, rewards = run_scenarios(mesh.decision_address, data)
            print(format_table(HEADERS, decision_rows(data, decisions)))
            print()
            for decision, accepted in rewards:
                state = "accepted" if accepted else "not accepted"
                print(f"reward 1.0 (click) for {decision.offer_id} [{decision.event_id}]: {state}")
    except MeshError as error:
        print(f"emma demo: {error}", file=sys.stderr)
        return 1
    except (EmmaError, grpc.RpcError) as error:
        print(f"emma demo: {error}; service logs in {mesh.run_dir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emma demo: interrupted", file=sys.stderr)
        return 130
    finally:
        mesh.stop()
    print(f"\nstopped everything; the demo took {time.monotonic() - started:.1f} s")
    return 0
