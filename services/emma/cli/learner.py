"""`emma learner [flags]`: runs the learner in the foreground, as `python -m emma.learner`."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from emma.learner.config import LearnerConfig

# Flags land under this prefix in the parsed namespace, clear of the other commands' names.
_DEST = "learner_"


def _flags() -> list[tuple[str, dataclasses.Field[Any]]]:
    return [
        ("--" + field.name.replace("_", "-"), field)
        for field in dataclasses.fields(LearnerConfig)
        if "env" in field.metadata
    ]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "learner",
        help="run the learner: join rewards to decisions, train, publish models",
        description="Runs the learner until SIGTERM/Ctrl-C: it reads the decision and reward "
        "streams with a consumer group, joins rewards to decisions within the reward window, "
        "trains Vowpal Wabbit and publishes model snapshots that every decision replica "
        "loads. Each flag can also be set by its EMMA_* variable.",
    )
    for flag, field in _flags():
        parser.add_argument(
            flag,
            dest=_DEST + field.name,
            metavar=field.name.upper(),
            help=f"{field.metadata['help']} (env {field.metadata['env']}, "
            f"default {field.default!r})",
        )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported late: the server pulls in Redis and the gRPC stack.
    from emma.learner.server import main

    argv: list[str] = []
    for flag, field in _flags():
        value = getattr(args, _DEST + field.name)
        if value is not None:
            # `--flag=value`: a value such as EMMA_VW_ARGS's may itself start with `--`.
            argv.append(f"{flag}={value}")
    # The learner's own configuration loader checks and converts the values.
    return main(argv)
