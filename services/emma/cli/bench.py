"""`emma bench`: open-loop load against the mesh, next to a plain gRPC echo-chain floor."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import grpc

from emma.cli.mesh import Mesh, MeshError, MeshPorts
from emma.cli.signals import sigterm_as_interrupt

# Enough offers that a decision scores EMMA_MAX_ACTIONS (50) actions, as the goals assume.
BENCH_CATALOG = Path(__file__).resolve().parent.parent / "loadgen" / "catalog.yaml"
# Callers are many: their calls arrive over several connections, which a service's worker
# processes share (SO_REUSEPORT picks a worker per connection at random). Each call goes to
# the worker with the fewest in flight, as the SDK's do (every answer names its worker), so
# the workers share the calls however the connections fell.
DEFAULT_CONNECTIONS = 8


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bench",
        help="open-loop load generator: latency percentiles of Decide and the services",
        description="Sends requests at a fixed rate whatever the answers do (open loop; "
        "latency counts from when a request was due, so queueing is never hidden), for "
        "each target in turn: decide, decision.health (the decision service's server "
        "without Decide's work), profile.get, profile.record, context.resolve and "
        "floor (a plain gRPC echo chain of Decide's shape, whose percentiles every other "
        "target is divided by). Starts a private mesh (Redis, services, learner) unless "
        "--decision-addr / --profile-addr / --context-addr name running services.",
    )
    parser.add_argument(
        "--target",
        action="append",
        choices=[
            "decide",
            "decision.health",
            "profile.get",
            "profile.record",
            "context.resolve",
            "floor",
        ],
        help="what to drive, repeatable, in order (default: floor, then decide)",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s (default 200)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="drive the targets in turn this many times (each for --warmup and --duration): "
        "each round's ratio to the floor compares neighbours in time on a machine whose "
        "speed drifts; the report gives their median (default 1)",
    )
    parser.add_argument("--timeout", type=float, default=1.0, help="deadline of each call, s")
    parser.add_argument("--customers", type=int, default=500, help="synthetic customers")
    parser.add_argument(
        "--connections",
        type=int,
        default=DEFAULT_CONNECTIONS,
        help="callers' connections, each call to the worker with the fewest in flight (a "
        "service's worker processes share the connections; every answer names its worker); "
        f"default {DEFAULT_CONNECTIONS}",
    )
    parser.add_argument("--decision-addr", help="drive this decision service (host:port)")
    parser.add_argument("--profile-addr", help="... this profile service")
    parser.add_argument("--context-addr", help="... this context service")
    parser.add_argument(
        "--no-seed", action="store_true", help="do not create the synthetic customers first"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the private mesh, e.g. EMMA_EVENT_LOOP=asyncio (repeatable)",
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        default=BENCH_CATALOG,
        help="catalog of the private mesh (default: the demo's plus 24 offers, > 50 actions)",
    )
    parser.add_argument(
        "--trace-sink",
        action="store_true",
        help="export the private mesh's traces over OTLP to a sink that counts and drops them "
        "(what exporting costs, without a collector)",
    )
    parser.add_argument("--redis-url", help="Redis of the private mesh (default: a private one)")
    parser.add_argument("--run-dir", type=Path, help="directory for the private mesh's logs")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="latency over time as PNG")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> str | None:
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.timeout <= 0:
        return "--rate, --duration and --timeout must be > 0, --warmup >= 0"
    if not 1 <= args.rounds <= 100:
        return "--rounds must be 1..100"
    if args.customers < 1:
        return "--customers must be >= 1"
    if not 1 <= args.connections <= 64:
        return "--connections must be 1..64"
    if any("=" not in item for item in args.env):
        return "--env takes NAME=VALUE"
    return None


def _given(args: argparse.Namespace) -> dict[str, str]:
    given = {
        "decision": args.decision_addr,
        "profile": args.profile_addr,
        "context": args.context_addr,
    }
    return {service: address for service, address in given.items() if address}


def run(args: argparse.Namespace) -> int:
    # Late imports: the load generator pulls in numpy and hdrh, which other commands skip.
    from emma.loadgen.report import noise_warnings, table
    from emma.loadgen.run import DEFAULT_TARGETS, BenchSettings, bench, missing_addresses, write
    from emma.loadgen.trace_sink import TraceSink
    from emma.loadgen.workload import Workload
    from emma.runtime.config import load_config
    from emma.triggers.config import TriggerConfig

    problem = _check(args)
    if problem:
        print(f"emma bench: {problem}", file=sys.stderr)
        return 2
    given = _given(args)
    settings = BenchSettings(
        addresses=given,
        targets=tuple(args.target or DEFAULT_TARGETS),
        rate=args.rate,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rounds=args.rounds,
        timeout_s=args.timeout,
        connections=args.connections,
        workload=Workload(customers=args.customers),
        seed_customers=not args.no_seed,
    )
    mesh: Mesh | None = None
    mesh_env = sorted(args.env)
    sink: TraceSink | None = None
    spans = 0
    try:
        with sigterm_as_interrupt():
            missing = missing_addresses(settings)
            if given or not missing:
                if missing:
                    print(f"emma bench: no address for {', '.join(missing)}", file=sys.stderr)
                    return 2
                where = "running services" if given else "echo chain only"
            else:
                env = {
                    "EMMA_CATALOG": str(args.catalog.resolve()),
                    # One decision worker per core, as on a machine of its own; --env
                    # EMMA_DECISION_WORKERS=1 measures a single process.
                    "EMMA_DECISION_WORKERS": str(os.cpu_count() or 1),
                }
                if args.trace_sink:
                    sink = TraceSink().start()
                    env.update(
                        OTEL_TRACES_EXPORTER="otlp",
                        OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
                        OTEL_EXPORTER_OTLP_INSECURE="true",
                    )
                env.update(item.split("=", 1) for item in args.env)
                mesh_env = sorted(f"{name}={value}" for name, value in env.items())
                mesh = Mesh(
                    ports=MeshPorts.free(),
                    redis_url=args.redis_url,
                    env=env,
                    run_dir=args.run_dir,
                )
                print("starting a private mesh ...", file=sys.stderr, flush=True)
                mesh.start()
                print(f"mesh up; logs in {mesh.run_dir}", file=sys.stderr, flush=True)
                settings = dataclasses.replace(
                    settings,
                    addresses={
                        "decision": mesh.decision_address,
                        "profile": mesh.profile_address,
                        "context": mesh.context_address,
                    },
                    pids=mesh.pids,
                    redis_url=mesh.redis_url,
                    events_stream=load_config(
                        TriggerConfig, [], mesh.child_env("triggers")
                    ).events_stream,
                )
                where = "private mesh"
            report = bench(settings)
    except MeshError as error:
        print(f"emma bench: {error}", file=sys.stderr)
        return 1
    except (grpc.RpcError, RuntimeError, OSError) as error:
        logs = f"; service logs in {mesh.run_dir}" if mesh else ""
        print(f"emma bench: {error}{logs}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emma bench: interrupted", file=sys.stderr)
        return 130
    finally:
        if mesh is not None:
            mesh.stop()  # the services flush their spans as they stop
        if sink is not None:
            spans = sink.spans()
            sink.stop()
    if sink is not None:
        report["settings"]["spans_exported"] = spans
    report["settings"]["mesh"] = where
    report["settings"]["mesh_env"] = mesh_env
    print(table(report))
    for goal in report["goals"]:
        print(f"  {'met    ' if goal['met'] else 'not met'}  {goal['goal']} ({goal['value']})")
    for warning in noise_warnings(report):
        print(f"  noisy    {warning}")
    write(report, args.json, args.plot)
    if args.json:
        print(f"report: {args.json}")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0
