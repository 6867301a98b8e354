"""`emma decide`, `emma activate`, `emma reward`: one call to a running decision service."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import grpc

from emma_client import EmmaClient, EmmaError, tls_credentials
from emma_client.names import CHANNEL_NAMES, TOUCHPOINT_NAMES

DEFAULT_ADDRESS = "127.0.0.1:50051"


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=os.environ.get("EMMA_DECISION_ADDR", DEFAULT_ADDRESS),
        help="decision service host:port (env EMMA_DECISION_ADDR, default %(default)s)",
    )
    parser.add_argument(
        "--deadline", type=float, default=2.0, help="seconds before the call gives up"
    )
    parser.add_argument(
        "--tls-ca", type=Path, help="CA (PEM) the server's certificate chains to; turns TLS on"
    )
    parser.add_argument("--tls", action="store_true", help="TLS, trusting the system's CAs")
    parser.add_argument("--tls-cert", type=Path, help="this caller's certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="this caller's private key (mutual TLS)")
    # A file, not the token itself: a command line is visible to every user of the machine.
    parser.add_argument("--token-file", type=Path, help="file holding this caller's token")


def _client(args: argparse.Namespace) -> EmmaClient:
    """A client for the flags: plaintext unless a TLS flag is given, a token when a file is."""
    credentials: grpc.ChannelCredentials | None = None
    if args.tls or args.tls_ca or args.tls_cert or args.tls_key:
        credentials = tls_credentials(args.tls_ca, args.tls_cert, args.tls_key)
    token = args.token_file.read_text().strip() if args.token_file else None
    return EmmaClient(args.address, deadline=args.deadline, credentials=credentials, token=token)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "decide",
        help="ask for a decision and print it as JSON",
        description="Asks the decision service for one offer, channel and send time.",
    )
    parser.add_argument(
        "--customer",
        required=True,
        metavar="KIND:VALUE",
        help="e.g. loyalty_card:1001, customer_id:c-anna, app_user_id:app-ben",
    )
    parser.add_argument("--touchpoint", required=True, choices=TOUCHPOINT_NAMES)
    parser.add_argument("--store", default="", metavar="ID", help="store id, e.g. berlin-mitte")
    parser.add_argument("--lat", type=float, help="latitude of the device")
    parser.add_argument("--lon", type=float, help="longitude of the device")
    parser.add_argument(
        "--basket",
        nargs="+",
        action="extend",
        default=[],
        metavar="LINE",
        help="basket lines product:category:quantity:amount, e.g. brezel:bakery:2:1.40",
    )
    parser.add_argument("--budget-ms", type=float, help="latency budget in milliseconds")
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        choices=CHANNEL_NAMES,
        help="a channel the caller can deliver on (repeatable); all of the touchpoint's if none",
    )
    parser.add_argument("--deferred", action="store_true", help="count only after `activate`")
    parser.add_argument("--device", default="", help="device class, e.g. ios, till")
    _add_connection_flags(parser)
    parser.set_defaults(func=run_decide)

    activate = commands.add_parser("activate", help="confirm a deferred decision was shown")
    activate.add_argument("event_id")
    _add_connection_flags(activate)
    activate.set_defaults(func=run_activate)

    reward = commands.add_parser("reward", help="report the outcome of a decision")
    reward.add_argument("event_id")
    reward.add_argument("value", type=float, help="e.g. 1 for a click, the margin for a sale")
    reward.add_argument("--kind", default="", help="what happened: click, redeem, purchase")
    _add_connection_flags(reward)
    reward.set_defaults(func=run_reward)


def _print(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def run_decide(args: argparse.Namespace) -> int:
    if (args.lat is None) != (args.lon is None):
        print("emma decide: give both --lat and --lon, or neither", file=sys.stderr)
        return 2
    try:
        with _client(args) as client:
            decision = client.decide(
                args.customer,
                touchpoint=args.touchpoint,
                store_id=args.store,
                location=None if args.lat is None else (args.lat, args.lon),
                basket=args.basket or None,
                budget_ms=args.budget_ms,
                allowed_channels=args.channel,
                deferred_activation=args.deferred,
                device=args.device,
            )
    except (ValueError, OSError) as error:
        print(f"emma decide: {error}", file=sys.stderr)
        return 2
    except EmmaError as error:
        print(f"emma decide: {error}", file=sys.stderr)
        return 1
    _print(decision.to_dict())
    return 0


def run_activate(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            activated = client.activate(args.event_id)
    except (ValueError, OSError, EmmaError) as error:
        print(f"emma activate: {error}", file=sys.stderr)
        return 1
    _print({"event_id": args.event_id, "activated": activated})
    return 0


def run_reward(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            accepted = client.reward(args.event_id, args.value, args.kind)
    except (ValueError, OSError, EmmaError) as error:
        print(f"emma reward: {error}", file=sys.stderr)
        return 1
    _print({"event_id": args.event_id, "accepted": accepted})
    return 0
