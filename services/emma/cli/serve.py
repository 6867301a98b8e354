"""`emma serve SERVICE [flags]`: runs one service in this process, as `python -m emma.SERVICE`."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from emma.cli.mesh import SERVICES


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run one service (profile, context or decision) in the foreground",
        description="Runs one Emma service until SIGTERM/Ctrl-C. Flags after the service name "
        "go to the service (try `emma serve decision --help`); EMMA_* variables work too.",
    )
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("service_args", nargs=argparse.REMAINDER, metavar="FLAGS")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported late: each service pulls in its own dependencies (Redis, VW, holidays).
    server = importlib.import_module(f"emma.{args.service}.server")
    return int(server.main(args.service_args))
