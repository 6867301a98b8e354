"""`emma faults`: the fault suite: faults under steady load, then an audit of what was lost."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

# The profile `emma faults` runs unless --profile says otherwise.
PROFILE_ENV = "EMMA_FAULTS_PROFILE"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "faults",
        help="kill, stop and freeze parts of a live mesh under load; report errors, "
        "latency and losses",
        description="Starts Redis (AOF, appendfsync everysec), profile, context, the learner "
        "and two decision replicas; drives Decide and Reward at a steady rate through the "
        "Python SDK while it kills and restarts profile, context, one decision replica and "
        "the learner, stops and restarts Redis, and freezes the profile service (SIGSTOP). "
        "Then it reads the decision log, the reward stream and the learner's checkpoint "
        "and reports what callers saw and what was lost. Exit code 1 when a goal is missed.",
    )
    parser.add_argument(
        "--profile",
        choices=("short", "long"),
        default=os.environ.get(PROFILE_ENV, "short"),
        help=f"short (about a minute, for CI) or long (env {PROFILE_ENV}; default %(default)s)",
    )
    parser.add_argument("--rate", type=float, help="Decide calls per second (default: profile's)")
    parser.add_argument("--budget-ms", type=float, help="Decide budget (default: profile's)")
    parser.add_argument(
        "--dependencies",
        choices=("services", "in-process"),
        default="services",
        help="EMMA_DECISION_DEPENDENCIES of the decision replicas: services (default; profile "
        "and context faults reach Decide) or in-process (only the profile store's do)",
    )
    parser.add_argument("--json", type=Path, help="write the report as JSON to this file")
    parser.add_argument("--run-dir", type=Path, help="directory for the service logs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported late: the suite pulls in gRPC, Redis and the SDK.
    from emma.faults.report import text
    from emma.faults.run import PROFILES
    from emma.faults.run import run as run_faults

    profile = PROFILES[args.profile]
    if args.rate is not None:
        if not args.rate > 0:
            print("emma faults: --rate must be > 0", file=sys.stderr)
            return 2
        profile = dataclasses.replace(profile, rate=args.rate)
    if args.budget_ms is not None:
        if not args.budget_ms > 0:
            print("emma faults: --budget-ms must be > 0", file=sys.stderr)
            return 2
        profile = dataclasses.replace(profile, budget_ms=args.budget_ms)
    profile = dataclasses.replace(profile, dependencies=args.dependencies)
    report = asyncio.run(run_faults(profile, args.run_dir))
    print(text(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0 if all(report.goals().values()) else 1
