"""`emma up`: runs Redis, the services, the learner and the trigger engine until stopped."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from emma.cli.mesh import (
    DEFAULT_METRICS_PORTS,
    DEFAULT_PORTS,
    PROCESSES,
    Mesh,
    MeshPorts,
    start_and_report,
)
from emma.cli.observability import (
    add_observability_arguments,
    describe_observability,
    trace_receiver,
)
from emma.cli.signals import sigterm_as_interrupt

# How often the supervisor looks whether a service died on its own.
WATCH_INTERVAL_S = 0.5


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "up",
        help="run the whole mesh (Redis, profile, context, decision, learner, triggers) "
        "until Ctrl-C",
        description="Starts a private redis-server (unless --redis-url or EMMA_REDIS_URL is "
        "given), the profile, context and decision services, the learner and the trigger "
        "engine as processes, "
        "waits until each is SERVING, and stops everything on Ctrl-C or SIGTERM.",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("EMMA_REDIS_URL"),
        help="use this Redis instead of a private one (env EMMA_REDIS_URL)",
    )
    parser.add_argument("--demo", action="store_true", help="load the demo customers")
    parser.add_argument("--host", default="127.0.0.1", help="interface the services listen on")
    for service in ("decision", "profile", "context", "learner", "triggers"):
        parser.add_argument(
            f"--{service}-port",
            type=int,
            default=DEFAULT_PORTS[service],
            help=f"port of the {service} (its health checks for the learner); 0 picks a free "
            "one (default %(default)s)",
        )
    parser.add_argument(
        "--run-dir", type=Path, help="directory for the service logs (default: a new temp dir)"
    )
    parser.add_argument(
        "--startup-timeout", type=float, default=30.0, help="seconds to wait for SERVING"
    )
    add_observability_arguments(parser)
    parser.set_defaults(func=run)


def mesh_from_args(args: argparse.Namespace) -> Mesh:
    return Mesh(
        host=args.host,
        ports=MeshPorts(
            decision=args.decision_port,
            profile=args.profile_port,
            context=args.context_port,
            learner=args.learner_port,
            triggers=args.triggers_port,
        ),
        redis_url=args.redis_url,
        run_dir=args.run_dir,
        startup_timeout=args.startup_timeout,
        metrics=DEFAULT_METRICS_PORTS if getattr(args, "metrics", False) else None,
    )


def describe(mesh: Mesh, own_redis: bool) -> str:
    lines = []
    for service in PROCESSES:
        child = mesh.children[service]
        lines.append(
            f"  {service:<9} {mesh.address(service):<21} pid {child.process.pid:<7} "
            f"log {child.log_path}"
        )
    redis = f"{mesh.redis_url} ({'private, removed on exit' if own_redis else 'external'})"
    lines.append(f"  {'redis':<9} {redis}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    mesh = mesh_from_args(args)
    own_redis = args.redis_url is None
    try:
        with sigterm_as_interrupt(), trace_receiver(args, mesh) as receiver:
            if not start_and_report(mesh, "up", sys.stdout):
                return 1
            if args.demo:
                # Late import: the demo loader pulls in the profile package, which only
                # `--demo` needs.
                from emma.demo.loader import load_demo_customers

                try:
                    summary = load_demo_customers(mesh.profile_address)
                except grpc.RpcError as error:
                    print(f"emma up: loading the demo customers failed: {error}", file=sys.stderr)
                    return 1
                print(
                    f"demo: {summary.customers} customers, {summary.events_accepted} events, "
                    f"{summary.identifiers_linked} identifiers loaded"
                )
            print(f"Emma is up (Ctrl-C to stop); logs in {mesh.run_dir}")
            print(describe(mesh, own_redis))
            print(describe_observability(mesh, receiver), end="")
            print(
                f"try: emma decide --address {mesh.decision_address} "
                "--customer loyalty_card:1001 --touchpoint pos --store berlin-mitte",
                flush=True,
            )
            return watch(mesh)
    except KeyboardInterrupt:
        print("emma up: stopping", flush=True)
        return 0
    finally:
        mesh.stop()


def watch(mesh: Mesh) -> int:
    """Blocks until interrupted; returns 1 if a service dies on its own."""
    while True:
        failed = mesh.failed()
        if failed is not None:
            print(
                f"emma up: {failed.service} exited with code {failed.process.returncode}; "
                f"stopping everything. Its log ({failed.log_path}):\n{failed.log_tail()}",
                file=sys.stderr,
            )
            return 1
        time.sleep(WATCH_INTERVAL_S)
