"""`emma simulate`: a synthetic population against the mesh, and the learning curve it yields."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import grpc

from emma.cli.mesh import Mesh, MeshPorts, start_and_report
from emma.cli.signals import sigterm_as_interrupt
from emma.decision.catalog import CatalogError
from emma.simulation.driver import DriveSettings
from emma.simulation.moments import MomentSettings
from emma.simulation.moments_report import (
    moments_document,
    moments_table,
    moments_text,
    summarise_moments,
)
from emma.simulation.oracle import UnsupportedCatalog
from emma.simulation.population import PopulationSettings
from emma.simulation.report import document, plot, summary_text, table
from emma.simulation.run import (
    CATALOG,
    MESH_ENV,
    MomentsTarget,
    SimulationResult,
    SimulationSettings,
    load_simulation_catalog,
    simulate,
)
from emma_client import EmmaError


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate",
        help="drive the mesh with simulated customers and plot the learning curve",
        description="Creates a synthetic population with hidden tastes through the profile "
        "service, makes decisions for them at simulated times through Decide, answers with "
        "simulated responses through Reward, and reports the average reward per window "
        "against the oracle, the catalog-priority baseline and uniform random. Starts a "
        "private mesh (Redis, services, learner) with the simulation catalog unless "
        "--decision-addr and --profile-addr name a running one. With --moments the "
        "customers also produce the events trigger rules fire on, a trigger engine runs on "
        "the simulated clock beside the mesh, and the report shows the moments separately "
        "(docs/moments.md).",
    )
    parser.add_argument("--decisions", type=int, default=20_000, help="default %(default)s")
    parser.add_argument("--customers", type=int, default=400, help="default %(default)s")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="decisions in flight (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of requests and responses")
    parser.add_argument("--population-seed", type=int, default=1, help="seed of the customers")
    parser.add_argument(
        "--prefix", default="sim", help="customer ids are PREFIX-n (default %(default)s)"
    )
    parser.add_argument(
        "--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first simulated day"
    )
    parser.add_argument("--days", type=int, default=365, help="simulated days requests fall on")
    parser.add_argument("--window", type=int, default=1000, help="decisions per point of the curve")
    parser.add_argument(
        "--tail", type=int, default=2000, help="last decisions the summary compares"
    )
    parser.add_argument(
        "--budget-ms", type=float, default=1000.0, help="Decide budget (default %(default)s)"
    )
    parser.add_argument(
        "--report-misses",
        action="store_true",
        help="send Reward(0) when a customer does not respond (else the window's default)",
    )
    parser.add_argument(
        "--moments",
        action="store_true",
        help="also let the customers live through --moment-days of events (store visits with "
        "location pings, regular purchases, views, life events, support contacts) under a "
        "trigger engine on the simulated clock, respond to its pushes, and report the moments",
    )
    parser.add_argument(
        "--moment-days",
        type=int,
        default=42,
        help="days of moments, ending today (default %(default)s)",
    )
    parser.add_argument(
        "--catalog", type=Path, default=CATALOG, help="simulation catalog (the bundled one)"
    )
    parser.add_argument("--decision-addr", help="drive this decision service (host:port)")
    parser.add_argument("--profile-addr", help="... and load customers into this profile service")
    parser.add_argument(
        "--context-addr",
        help="... with --moments: its context service (its trigger engine must be stopped)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the private mesh, e.g. EMMA_VW_ARGS='...' (repeatable)",
    )
    parser.add_argument(
        "--redis-url",
        help="Redis of the private mesh (default: a private one, removed at the end); give "
        "one to keep the decision log for `emma evaluate`",
    )
    parser.add_argument("--run-dir", type=Path, help="directory for the private mesh's logs")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write the curve as a PNG")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.add_argument(
        "--steps", type=Path, metavar="FILE", help="write every decision as a JSON line"
    )
    parser.add_argument(
        "--fail-below",
        type=float,
        metavar="FRACTION",
        help="exit 1 when the policy earns less than this share of the oracle at the end",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> str | None:
    if (args.decision_addr is None) != (args.profile_addr is None):
        return "give both --decision-addr and --profile-addr, or neither (private mesh)"
    if args.decisions < 1 or args.customers < 1 or args.concurrency < 1:
        return "--decisions, --customers and --concurrency must be >= 1"
    if args.window < 1 or args.tail < 1 or args.days < 1:
        return "--window, --tail and --days must be >= 1"
    if any("=" not in item for item in args.env):
        return "--env takes NAME=VALUE"
    if args.moments and args.moment_days < 1:
        return "--moment-days must be >= 1"
    if args.moments and args.decision_addr and not (args.context_addr and args.redis_url):
        return "--moments against a running mesh needs --context-addr and --redis-url"
    return None


def settings_of(args: argparse.Namespace) -> SimulationSettings:
    return SimulationSettings(
        catalog=args.catalog,
        population=PopulationSettings(customers=args.customers),
        drive=DriveSettings(
            decisions=args.decisions,
            concurrency=args.concurrency,
            seed=args.seed,
            budget_ms=args.budget_ms,
            report_misses=args.report_misses,
        ),
        prefix=args.prefix,
        population_seed=args.population_seed,
        start=args.start,
        days=args.days,
        window=args.window,
        tail=args.tail,
        moments=MomentSettings(days=args.moment_days, seed=args.seed) if args.moments else None,
    )


def _progress(total: int, every: int, quiet: bool) -> Any:
    started = time.monotonic()

    def report(done: int) -> None:
        if not quiet and (done % every == 0 or done == total):
            rate = done / max(1e-9, time.monotonic() - started)
            print(f"  {done}/{total} decisions ({rate:.0f}/s)", file=sys.stderr, flush=True)

    return report


def mesh_env(args: argparse.Namespace) -> dict[str, str]:
    env = {"EMMA_CATALOG": str(args.catalog.resolve()), **MESH_ENV}
    env.update(item.split("=", 1) for item in args.env)
    return env


def stop_wall_clock_engine(mesh: Mesh) -> None:
    """Stops the mesh's own trigger engine: with moments, the simulation runs the engine on
    its simulated clock, and two engines would split the events stream between them."""
    child = mesh.children.get("triggers")
    if child is None or child.process.poll() is not None:
        return
    child.process.send_signal(signal.SIGTERM)
    try:
        child.process.wait(timeout=mesh.stop_timeout)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()


def _simulate(
    args: argparse.Namespace, decision: str, profile: str, target: MomentsTarget | None
) -> SimulationResult:
    settings = settings_of(args)
    progress = _progress(settings.drive.decisions, max(settings.window, 1000), args.quiet)
    return asyncio.run(simulate(decision, profile, settings, progress, target))


def _report(args: argparse.Namespace, result: SimulationResult, where: str) -> None:
    print(f"\nlearning curve ({where}), average reward per decision:")
    print(table(result.windows))
    print()
    print(summary_text(result.summary))
    settings = dataclasses.asdict(settings_of(args))
    settings["catalog"] = str(args.catalog)
    settings["mesh"] = where
    moments = (
        summarise_moments(result.moments, result.steps) if result.moments is not None else None
    )
    if moments is not None:
        print("\nmoments (trigger engine on the simulated clock):")
        print(moments_table(moments))
        print()
        print(moments_text(moments))
    if args.json:
        report = document(result.windows, result.summary, settings)
        if moments is not None and result.moments is not None:
            report["moments"] = moments_document(moments, result.moments)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"report: {args.json}")
    if args.steps:
        with args.steps.open("w", encoding="utf-8") as out:
            for step in result.steps:
                out.write(json.dumps(dataclasses.asdict(step)) + "\n")
        print(f"steps: {args.steps}")
    if args.plot:
        title = f"emma simulate: {result.summary.decisions} decisions, {args.customers} customers"
        plot(result.windows, args.plot, title)
        print(f"plot: {args.plot}")


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"emma simulate: {problem}", file=sys.stderr)
        return 2
    try:
        load_simulation_catalog(args.catalog)
    except (CatalogError, UnsupportedCatalog) as error:
        print(f"emma simulate: {error}", file=sys.stderr)
        return 2
    mesh: Mesh | None = None
    try:
        with sigterm_as_interrupt():
            if args.decision_addr:
                where = f"mesh at {args.decision_addr}"
                target = MomentsTarget(args.context_addr, args.redis_url) if args.moments else None
                result = _simulate(args, args.decision_addr, args.profile_addr, target)
            else:
                mesh = Mesh(
                    ports=MeshPorts.free(),
                    redis_url=args.redis_url,
                    env=mesh_env(args),
                    run_dir=args.run_dir,
                )
                print("a private mesh with the simulation catalog:", file=sys.stderr)
                if not start_and_report(mesh, "simulate", sys.stderr):
                    return 1
                where = "private mesh"
                target = None
                if args.moments:
                    assert mesh.redis_url is not None
                    stop_wall_clock_engine(mesh)
                    target = MomentsTarget(mesh.context_address, mesh.redis_url)
                result = _simulate(args, mesh.decision_address, mesh.profile_address, target)
    except (EmmaError, grpc.RpcError) as error:
        logs = f"; service logs in {mesh.run_dir}" if mesh else ""
        print(f"emma simulate: {error}{logs}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emma simulate: interrupted", file=sys.stderr)
        return 130
    finally:
        if mesh is not None:
            mesh.stop()
    _report(args, result, where)
    if args.fail_below is not None and result.summary.of_oracle < args.fail_below:
        print(
            f"emma simulate: the policy earned {result.summary.of_oracle:.0%} of the oracle, "
            f"below {args.fail_below:.0%}",
            file=sys.stderr,
        )
        return 1
    return 0
