"""`emma trace TRACE_ID` and `emma traces [--slow]`: traces kept by the receiver of `emma up`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc

DEFAULT_ADDRESS = "127.0.0.1:4317"


def register(commands: Any) -> None:
    one = commands.add_parser(
        "trace",
        help="print one trace as a waterfall (from `emma up --traces`)",
        description="Asks the trace receiver that `emma up --traces` runs for the spans of "
        "TRACE_ID (as Decide answers report it) and prints them as a waterfall: service, span, "
        "start offset, a duration bar and the emma.* attributes.",
    )
    one.add_argument("trace_id", help="32 hex digits")
    one.add_argument("--address", default=DEFAULT_ADDRESS, help="receiver (default %(default)s)")
    one.set_defaults(func=run_trace)

    many = commands.add_parser(
        "traces",
        help="list recent (or the slowest) traces kept by `emma up --traces`",
        description="Lists the traces the receiver keeps, the most recent first; with --slow "
        "the slowest first, and --waterfall prints each as a waterfall.",
    )
    many.add_argument("--slow", action="store_true", help="the slowest traces first")
    many.add_argument("--limit", type=int, default=10, help="how many (default %(default)s)")
    many.add_argument("--waterfall", action="store_true", help="print each trace's waterfall")
    many.add_argument("--address", default=DEFAULT_ADDRESS, help="receiver (default %(default)s)")
    many.set_defaults(func=run_traces)


def _failed(command: str, address: str, error: grpc.RpcError) -> int:
    code = error.code() if isinstance(error, grpc.Call) else None
    detail = error.details() if isinstance(error, grpc.Call) else str(error)
    if code == grpc.StatusCode.UNAVAILABLE:
        detail = f"no trace receiver at {address} (start one with `emma up --traces`)"
    print(f"emma {command}: {detail}", file=sys.stderr)
    return 1


def run_trace(args: argparse.Namespace) -> int:
    from emma.traces.query import get_trace
    from emma.traces.waterfall import render

    try:
        spans = get_trace(args.address, args.trace_id)
    except grpc.RpcError as error:
        return _failed("trace", args.address, error)
    print(render(spans))
    return 0


def run_traces(args: argparse.Namespace) -> int:
    from emma.traces.query import list_traces
    from emma.traces.waterfall import render, render_list

    if not 1 <= args.limit <= 1000:
        print("emma traces: --limit: expected 1..1000", file=sys.stderr)
        return 2
    order = "slowest" if args.slow else "recent"
    try:
        found = list_traces(args.address, order, args.limit)
    except grpc.RpcError as error:
        return _failed("traces", args.address, error)
    print(render_list([summary for summary, _ in found]))
    if args.waterfall:
        for _, spans in found:
            print()
            print(render(spans))
    return 0
