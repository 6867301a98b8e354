"""Context service benchmark: Resolve in-process and over gRPC, next to a gRPC ping-pong.

    .venv/bin/python -m bench.context [--stores 10000] [--calls 50000] [--grpc-calls 4000]
                                      [--json] [--seed 1]

Generates a registry of synthetic stores around German and a few foreign cities,
then measures, in one run:

- the registry load (YAML parse and validation) and the nearest-store search;
- Resolve in-process: the servicer's whole handler (proto in, resolver, signal
  providers, features, proto out) without transport, per kind of request, the kinds
  interleaved with a reference job of fixed work (its spread is the machine's noise),
  in a process whose heap is frozen after loading as in `emma serve context`;
- Resolve over real gRPC on loopback against a server process built like
  `emma serve context` (same grpc.aio server, interceptors and tracing), interleaved
  with a trivial unary echo on the same server: the ping-pong baseline.

Goals: in-process p99 <= 200 us; over gRPC, Resolve p50 <= 1.3 x ping-pong p50.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import yaml

from bench.echo_server import ECHO_SERVICE, serve_with_echo
from emma.common.v1 import common_pb2
from emma.context.config import ContextConfig
from emma.context.geo import haversine_m
from emma.context.server import build_server, build_service
from emma.context.service import ContextService
from emma.context.stores import StoreRegistry, load_stores
from emma.context.v1 import context_pb2
from emma.runtime.config import load_config
from emma.runtime.heap import freeze_heap
from emma.runtime.main import build_served

IN_PROCESS_GOAL_P99_US = 200.0
GRPC_GOAL_RATIO = 1.3
REFERENCE = "reference (fixed Python work)"
# Percentiles of the in-process figures are also taken per block of consecutive calls:
# their spread tells how far a p99 can be trusted.
BLOCKS = 5
ECHO_METHOD = f"/{ECHO_SERVICE}/Ping"
# The month the requests fall in: Advent, Christmas and New Year, so holidays and retail
# seasons are in play.
FIRST_INSTANT = datetime(2026, 12, 1, tzinfo=UTC)
INSTANT_SPREAD = timedelta(days=31)

# (name, country, region, zone, latitude, longitude); stores scatter around them.
CITIES = (
    ("berlin", "DE", "BE", "Europe/Berlin", 52.52, 13.40),
    ("hamburg", "DE", "HH", "Europe/Berlin", 53.55, 9.99),
    ("muenchen", "DE", "BY", "Europe/Berlin", 48.14, 11.58),
    ("koeln", "DE", "NW", "Europe/Berlin", 50.94, 6.96),
    ("frankfurt", "DE", "HE", "Europe/Berlin", 50.11, 8.68),
    ("stuttgart", "DE", "BW", "Europe/Berlin", 48.78, 9.18),
    ("leipzig", "DE", "SN", "Europe/Berlin", 51.34, 12.37),
    ("hannover", "DE", "NI", "Europe/Berlin", 52.37, 9.74),
    ("erfurt", "DE", "TH", "Europe/Berlin", 50.98, 11.03),
    ("mainz", "DE", "RP", "Europe/Berlin", 50.00, 8.27),
    ("saarbruecken", "DE", "SL", "Europe/Berlin", 49.24, 6.99),
    ("kiel", "DE", "SH", "Europe/Berlin", 54.32, 10.13),
    ("rostock", "DE", "MV", "Europe/Berlin", 54.09, 12.10),
    ("magdeburg", "DE", "ST", "Europe/Berlin", 52.13, 11.63),
    ("potsdam", "DE", "BB", "Europe/Berlin", 52.39, 13.06),
    ("bremen", "DE", "HB", "Europe/Berlin", 53.08, 8.80),
    ("wien", "AT", "9", "Europe/Vienna", 48.21, 16.37),
    ("zuerich", "CH", "ZH", "Europe/Zurich", 47.37, 8.54),
    ("sydney", "AU", "NSW", "Australia/Sydney", -33.87, 151.21),
    ("new-york", "US", "NY", "America/New_York", 40.71, -74.01),
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat")
BASKET = (
    common_pb2.BasketItem(product_id="emmentaler", category="cheese", quantity=1, amount=4.99),
    common_pb2.BasketItem(product_id="brezel", category="bakery", quantity=2, amount=1.40),
    common_pb2.BasketItem(product_id="riesling", category="wine", quantity=1, amount=8.99),
)


def synthetic_stores(count: int, seed: int) -> list[dict[str, Any]]:
    """Store file entries scattered up to ~60 km around the cities."""
    rng = random.Random(seed)
    stores = []
    for number in range(count):
        name, country, region, zone, latitude, longitude = rng.choice(CITIES)
        overnight = number % 10 == 0  # some stores run night shifts
        hours = "20:00-06:00" if overnight else "07:00-22:00"
        stores.append(
            {
                "id": f"{name}-{number:05d}",
                "name": f"Emma {name.title()} {number}",
                "latitude": round(latitude + rng.uniform(-0.5, 0.5), 5),
                "longitude": round(longitude + rng.uniform(-0.7, 0.7), 5),
                "country": country,
                "region": region,
                "time_zone": zone,
                "geofence_m": 150,
                "opening_hours": {day: [hours] for day in WEEKDAYS},
                "attributes": {"format": rng.choice(["supermarket", "express"])},
            }
        )
    return stores


def write_registry(path: Path, stores: list[dict[str, Any]]) -> None:
    """The store file, as YAML, or as JSON for a path ending in .json."""
    data = {"stores": stores}
    if path.suffix == ".json":
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _instant(rng: random.Random) -> datetime:
    return FIRST_INSTANT + timedelta(seconds=rng.uniform(0, INSTANT_SPREAD.total_seconds()))


def request_kinds(
    registry: StoreRegistry, count: int, seed: int
) -> dict[str, list[context_pb2.ResolveRequest]]:
    """`count` requests of each kind: a till, an app in a store, an app on the move, the web."""
    rng = random.Random(seed)
    stores = list(registry)
    kinds: dict[str, list[context_pb2.ResolveRequest]] = {
        "till (store id, basket)": [],
        "app in a store (location)": [],
        "app on the move (location)": [],
        "web (time only)": [],
    }
    for _ in range(count):
        store = rng.choice(stores)
        till = context_pb2.ResolveRequest(
            store_id=store.store_id, touchpoint=common_pb2.TOUCHPOINT_POS, device="till"
        )
        till.basket.items.extend(BASKET)
        till.basket.currency = "EUR"
        inside = context_pb2.ResolveRequest(
            location=common_pb2.GeoPoint(
                latitude=store.latitude + rng.uniform(-0.0005, 0.0005),
                longitude=store.longitude + rng.uniform(-0.0005, 0.0005),
            ),
            touchpoint=common_pb2.TOUCHPOINT_APP,
            device="ios",
        )
        moving = context_pb2.ResolveRequest(
            location=common_pb2.GeoPoint(
                latitude=rng.uniform(47.5, 54.5), longitude=rng.uniform(6.5, 14.5)
            ),
            touchpoint=common_pb2.TOUCHPOINT_APP,
            device="android",
        )
        web = context_pb2.ResolveRequest(touchpoint=common_pb2.TOUCHPOINT_WEB)
        for request, kind in zip((till, inside, moving, web), kinds.values(), strict=True):
            request.time.FromDatetime(_instant(rng))
            kind.append(request)
    return kinds


@dataclasses.dataclass(frozen=True)
class Figures:
    """Latency percentiles of one measurement, in microseconds."""

    name: str
    calls: int
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    # The lowest and highest p99 of BLOCKS blocks of consecutive calls (equal to p99_us
    # when there are too few calls for blocks).
    p99_block_min_us: float
    p99_block_max_us: float

    @classmethod
    def of(cls, name: str, samples_ns: Sequence[int]) -> Figures:
        values = np.asarray(samples_ns, dtype=np.float64) / 1000.0
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        blocks = [float(np.percentile(block, 99)) for block in np.array_split(values, BLOCKS)]
        if len(values) < 100 * BLOCKS:
            blocks = [float(p99)]
        return cls(
            name,
            len(values),
            float(p50),
            float(p90),
            float(p99),
            float(values.mean()),
            min(blocks),
            max(blocks),
        )


class _NoDeadline:
    """The servicer context of a call without a deadline, for calls without transport."""

    def time_remaining(self) -> float | None:
        return None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


def reference_work() -> int:
    """A fixed job of plain Python, about as long as a Resolve with a location (some 60 us),
    making no containers (so it never sets off a garbage collection): the same every
    call, so its spread is what the machine adds, not what the code does. A call is
    preempted with a chance in proportion to its length, and a preemption on a loaded
    machine costs a time slice (some 4 ms): once that chance passes 1%, the p99 is the
    time slice."""
    total = 0
    for number in range(1200):
        total += number * number % 7
    return total


async def measure_in_process(
    service: ContextService, kinds: dict[str, list[context_pb2.ResolveRequest]], calls: int
) -> dict[str, list[int]]:
    """Times the Resolve handler itself (what a call costs the server beyond transport),
    one call of each kind and one reference job in turn, so load changes hit all alike."""
    context: Any = _NoDeadline()
    for requests in kinds.values():  # warm caches and code paths
        for request in requests[: min(len(requests), 2000)]:
            await service.Resolve(request, context)
    samples: dict[str, list[int]] = {kind: [] for kind in kinds}
    samples[REFERENCE] = []
    clock = time.perf_counter_ns
    rounds = [(kind, requests, samples[kind]) for kind, requests in kinds.items()]
    reference = samples[REFERENCE]
    for index in range(calls):
        for _, requests, taken in rounds:
            request = requests[index % len(requests)]
            started = clock()
            await service.Resolve(request, context)
            taken.append(clock() - started)
        started = clock()
        reference_work()
        reference.append(clock() - started)
    return samples


def measure_nearest(registry: StoreRegistry, calls: int, seed: int) -> tuple[list[int], int]:
    """Nearest-store search on its own, checked against a brute-force haversine scan."""
    rng = random.Random(seed)
    stores = list(registry)
    latitudes = np.array([s.latitude for s in stores])
    longitudes = np.array([s.longitude for s in stores])
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(calls // 2)]
    points += [(rng.uniform(47.5, 54.5), rng.uniform(6.5, 14.5)) for _ in range(calls // 2)]
    samples, mismatches = [], 0
    clock = time.perf_counter_ns
    for latitude, longitude in points:
        started = clock()
        (found,) = registry.nearest(latitude, longitude)
        samples.append(clock() - started)
        brute = float(haversine_m(latitude, longitude, latitudes, longitudes).min())
        mismatches += abs(found.distance_m - brute) > 1e-6
    return samples, mismatches


# --- over gRPC --------------------------------------------------------------------------------


def _serve(stores_path: str, connection: Connection) -> None:
    """The server process: the context service as `emma serve context` builds it, plus echo."""
    serve_with_echo(
        "emma-context",
        lambda: build_served(
            build_server,
            load_config(ContextConfig, [], {"EMMA_STORES": stores_path, "EMMA_CONTEXT_PORT": "0"}),
        ),
        connection,
    )


async def measure_grpc(
    port: int, kinds: dict[str, list[context_pb2.ResolveRequest]], calls: int
) -> dict[str, list[int]]:
    """Interleaves echo and each kind of Resolve, so load changes hit all alike."""
    samples: dict[str, list[int]] = {"ping-pong (echo)": [], **{kind: [] for kind in kinds}}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        resolve = channel.unary_unary(
            "/emma.context.v1.ContextService/Resolve",
            request_serializer=context_pb2.ResolveRequest.SerializeToString,
            response_deserializer=context_pb2.ResolveResponse.FromString,
        )
        ping = channel.unary_unary(  # bytes in, bytes out: nothing to (de)serialise
            ECHO_METHOD, request_serializer=None, response_deserializer=None
        )
        payload = kinds[next(iter(kinds))][0].SerializeToString()
        calls_by_name: list[tuple[str, Callable[[int], Any]]] = [
            ("ping-pong (echo)", lambda _: ping(payload, timeout=5))
        ]
        for kind, requests in kinds.items():
            calls_by_name.append(
                (kind, lambda i, r=requests: resolve(r[i % len(r)], timeout=5))  # type: ignore[misc]
            )
        clock = time.perf_counter_ns
        for index in range(-min(500, calls), calls):  # the first rounds warm up
            for name, call in calls_by_name:
                started = clock()
                await call(index)
                if index >= 0:
                    samples[name].append(clock() - started)
    return samples


def run_grpc(
    stores_path: Path, kinds: dict[str, list[context_pb2.ResolveRequest]], calls: int
) -> dict[str, list[int]]:
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    process = spawn.Process(target=_serve, args=(str(stores_path), child), daemon=True)
    process.start()
    try:
        if not parent.poll(120):
            raise RuntimeError("the benchmark server did not start")
        port = parent.recv()
        return asyncio.run(measure_grpc(port, kinds, calls))
    finally:
        parent.send("stop")
        process.join(30)


# --- report -----------------------------------------------------------------------------------


def _table(title: str, rows: Sequence[Figures], blocks: bool = False) -> str:
    head = f"  {'what':<34}{'calls':>8}{'p50 us':>10}{'p90 us':>10}{'p99 us':>10}"
    lines = [title, head + (f"  p99 of {BLOCKS} blocks" if blocks else "")]
    for row in rows:
        line = (
            f"  {row.name:<34}{row.calls:>8}{row.p50_us:>10.1f}{row.p90_us:>10.1f}"
            f"{row.p99_us:>10.1f}"
        )
        if blocks:
            line += f"  {row.p99_block_min_us:.0f}-{row.p99_block_max_us:.0f}"
        lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.context", description=__doc__)
    parser.add_argument("--stores", type=int, default=10_000, help="synthetic stores")
    parser.add_argument("--calls", type=int, default=50_000, help="in-process calls per kind")
    parser.add_argument("--grpc-calls", type=int, default=4_000, help="gRPC calls per kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="emma-bench-") as directory:
        stores = synthetic_stores(args.stores, args.seed)
        load_s = {}
        for suffix in ("yaml", "json"):
            stores_path = Path(directory) / f"stores.{suffix}"
            write_registry(stores_path, stores)
            started = time.perf_counter()
            registry = load_stores(stores_path)
            load_s[suffix] = time.perf_counter() - started

        service = build_service(load_config(ContextConfig, [], {"EMMA_STORES": str(stores_path)}))
        kinds = request_kinds(registry, 5_000, args.seed)
        freeze_heap()  # as the service process does once loaded

        nearest_samples, mismatches = measure_nearest(registry, args.calls, args.seed)
        in_process = [Figures.of("nearest store search only", nearest_samples)]
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        by_kind = asyncio.run(measure_in_process(service, kinds, args.calls))
        # Involuntary context switches: how often other processes took the CPU.
        preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - switches
        reference = Figures.of(REFERENCE, by_kind.pop(REFERENCE))
        in_process.extend(Figures.of(kind, samples) for kind, samples in by_kind.items())
        over_grpc = [
            Figures.of(name, samples)
            for name, samples in run_grpc(stores_path, kinds, args.grpc_calls).items()
        ]

    ping = over_grpc[0]
    worst_in_process = max(row.p99_us for row in in_process[1:])
    ratios = {row.name: row.p50_us / ping.p50_us for row in over_grpc[1:]}
    # 1.0 for a job of fixed work on an idle machine; what the load adds to a p99.
    reference_spread = reference.p99_us / reference.p50_us
    result = {
        "stores": len(registry),
        "registry_load_s": load_s,
        "nearest_mismatches": mismatches,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "in_process": [dataclasses.asdict(row) for row in in_process],
        "in_process_reference": dataclasses.asdict(reference),
        "grpc": [dataclasses.asdict(row) for row in over_grpc],
        "grpc_p50_ratio_to_ping_pong": ratios,
        "reference_p99_to_p50": reference_spread,
        "in_process_preemptions": preempted,
        "goals": {
            "in_process_p99_us": IN_PROCESS_GOAL_P99_US,
            "in_process_met": worst_in_process <= IN_PROCESS_GOAL_P99_US,
            "grpc_p50_ratio": GRPC_GOAL_RATIO,
            "grpc_met": all(ratio <= GRPC_GOAL_RATIO for ratio in ratios.values()),
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{len(registry)} synthetic stores; registry loaded from YAML in {load_s['yaml']:.2f} s, "
        f"from JSON in {load_s['json']:.2f} s; nearest store equal to brute force: "
        f"{mismatches == 0}"
    )
    print(
        _table(
            "Resolve in-process (the handler, no transport)", [*in_process, reference], blocks=True
        )
    )
    print(_table("over gRPC on loopback (server in its own process)", over_grpc))
    for name, ratio in ratios.items():
        print(f"  p50 ratio to ping-pong  {name:<34}{ratio:>6.2f}")
    print(
        f"goals: in-process p99 <= {IN_PROCESS_GOAL_P99_US:.0f} us: "
        f"{'met' if result['goals']['in_process_met'] else 'MISSED'} "  # type: ignore[index]
        f"(worst {worst_in_process:.1f} us); gRPC p50 <= {GRPC_GOAL_RATIO} x ping-pong: "
        f"{'met' if result['goals']['grpc_met'] else 'MISSED'}"  # type: ignore[index]
    )
    rounds = args.calls * (len(kinds) + 1)
    print(
        f"the reference job's p99 is {reference_spread:.2f} x its p50 (1.0 on an idle machine); "
        f"in-process calls were preempted {preempted} times in {rounds} calls"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
