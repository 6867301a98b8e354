"""`emma catalog check FILE` and `emma catalog schema`: validate an offer catalog before use."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "catalog",
        help="check an offer catalog file or print its JSON Schema",
        description="Validates offer catalogs as the decision service does when it loads them.",
    )
    actions = parser.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a catalog: OK with a summary, or every problem (exit 1)",
        description="Prints `OK` and a summary, or each problem as FILE: WHERE: FIELD: PROBLEM.",
    )
    check.add_argument("file", type=Path, help="the catalog YAML file")
    check.add_argument(
        "--fallback-offer",
        default=os.environ.get("EMMA_FALLBACK_OFFER", ""),
        metavar="ID",
        help="fallback offer id as EMMA_FALLBACK_OFFER sets it (default: the catalog's own)",
    )
    check.set_defaults(func=run_check)
    schema = actions.add_parser("schema", help="print the catalog's JSON Schema")
    schema.set_defaults(func=run_schema)


def run_check(args: argparse.Namespace) -> int:
    from emma.decision.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(args.file, args.fallback_offer)
    except CatalogError as error:
        for line in error.lines:
            print(line)
        count = len(error.problems)
        print(f"{args.file}: {count} problem{'' if count == 1 else 's'}")
        return 1
    channels = sorted({c.value for o in catalog.candidates for c in o.channels})
    print(f"OK {args.file}")
    print(
        f"  offers:   {len(catalog.candidates)} candidates + fallback {catalog.fallback.offer_id}"
    )
    print(f"  channels: {', '.join(channels)}")
    print(f"  segments: {', '.join(catalog.segments) or '-'}")
    policy = catalog.policy
    caps = [f"{c.name} ({c.limit}/{_duration(c.window.total_seconds())})" for c in policy.caps]
    print(f"  caps:     {', '.join(caps) or '-'}")
    cooldowns = [
        f"{kind} {_duration(value.total_seconds())}"
        for kind, value in (
            ("offer", policy.offer_cooldown),
            ("category", policy.category_cooldown),
        )
        if value is not None
    ]
    print(f"  dismissal cool-down: {', '.join(cooldowns) or '-'}")
    quiet = ", ".join(sorted(c.value for c in policy.quiet_channels)) or "-"
    print(f"  quiet hours: {quiet} (horizon {_duration(policy.quiet_horizon.total_seconds())})")
    return 0


def _duration(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def run_schema(args: argparse.Namespace) -> int:
    from emma.decision.catalog import SCHEMA_PATH

    sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))
    return 0
