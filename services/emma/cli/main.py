"""`emma`: the command line entry point; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from emma.cli import (
    bench,
    catalog,
    certs,
    decide,
    demo,
    evaluate,
    faults,
    health,
    learner,
    serve,
    simulate,
    trace,
    up,
)

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emma",
        description="Emma, the real-time decisioning mesh: run it, ask it, watch the demo.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (up, serve, decide, demo, catalog, evaluate, simulate, learner, bench, certs):
        module.register(commands)
    trace.register(commands)
    health.register(commands)
    faults.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    command: Command = args.func
    return command(args)
