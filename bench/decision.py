"""Decide's pipeline in process: CPU per decision, with and without profile and context calls.

    .venv/bin/python -m bench.decision [--decisions 3000] [--warmup 300] [--profile FILE]
                                       [--json] [--mode MODE ...] [--rounds 3]

Starts a private mesh (Redis, profile, context, decision, learner, triggers) with the
benchmark catalog of `emma bench` (well over 50 eligible actions; EMMA_MAX_ACTIONS = 50
scored), seeds its 500 synthetic customers, then builds the decision service's pipeline
in this process exactly as `emma serve decision` does (`build_decider`: catalog, model,
contact policy, decision log on the mesh's Redis, its dependencies) and
calls `Decider.decide` on the request pool of `emma bench`, one after another, measuring
this process's CPU time per decision in three modes, interleaved in rounds:

- `services`: profile and context fetched over gRPC from the mesh's services
  (EMMA_DECISION_DEPENDENCIES=services; the decision service's own share of Decide,
  without its gRPC server, interceptors and proto conversion of the request and answer);
- `in-process`: the profile read from Redis and the context resolved in this process
  (EMMA_DECISION_DEPENDENCIES=in-process, the default): all of Decide's work but its
  own gRPC server;
- `logic`: the same profile and context answers replayed from memory (fetched once per
  request before the run): eligibility, features, the model, the contact policy, the
  decision log and reasons, with their Redis round trips.

The reference, measured in the same rounds: one Redis PING from this process (what a
round trip costs here). `--profile FILE` writes a cProfile of the `in-process` mode.
`--seed N` makes the event ids (and with them the draws) and the trace ids the same in
every run, so that two versions counted side by side make the same decisions.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import dataclasses
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from emma.cli.bench import BENCH_CATALOG
from emma.cli.mesh import Mesh, MeshPorts
from emma.decision import convert
from emma.decision.config import DEPENDENCIES, DecisionConfig
from emma.decision.dependencies import connect_dependencies
from emma.decision.domain import CustomerView, DecideInput, Situation
from emma.decision.event_ids import event_id_of
from emma.decision.pipeline import Decider
from emma.decision.server import build_decider
from emma.decision.v1 import decision_pb2
from emma.loadgen import workload
from emma.runtime import eventloop
from emma.runtime.channels import mesh_channel
from emma.runtime.config import load_config
from emma.runtime.heap import freeze_heap
from emma.runtime.metrics import configure_metrics
from emma.runtime.redis_client import connect_redis
from emma.runtime.redis_metrics import RedisLatencyProcessor
from emma.runtime.tracing import configure_tracing

ROUNDS = 3
MODES = (*DEPENDENCIES, "logic", "redis_ping")


@dataclasses.dataclass
class Replayed:
    """Profile and context answers fetched once per request, then given from memory."""

    answers: dict[int, tuple[CustomerView, Situation]]

    async def customer(self, request: DecideInput, timeout_s: float) -> CustomerView:
        return self.answers[id(request)][0]

    async def situation(self, request: DecideInput, timeout_s: float) -> Situation:
        return self.answers[id(request)][1]

    def cached_situation(self, request: DecideInput) -> Situation | None:
        return None


def _inputs(requests: list[decision_pb2.DecideRequest]) -> list[DecideInput]:
    now = datetime.now(UTC)
    return [convert.decide_input(request, now) for request in requests]


async def _cpu_per_call(call: Callable[[int], Awaitable[Any]], count: int) -> float:
    """CPU milliseconds of this process per call, over `count` calls in sequence."""
    started = time.process_time()
    for index in range(count):
        await call(index)
    return (time.process_time() - started) * 1000 / count


# The Unix millisecond of the first seeded event id (2026-01-01), one more for each next.
SEEDED_FROM_MS = 1_767_225_600_000


def seeded_event_ids(seed: int) -> Callable[[], str]:
    """Event ids from a seeded generator: the same sequence in every run."""
    bits = random.Random(seed)
    milliseconds = itertools.count(SEEDED_FROM_MS)
    return lambda: event_id_of(next(milliseconds), bits.getrandbits(80))


async def _measure(
    mesh: Mesh,
    decisions: int,
    warmup: int,
    profile_path: str | None,
    modes_wanted: tuple[str, ...] = MODES,
    rounds: int = ROUNDS,
    budget_ms: float | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    environ = mesh.child_env("decision")
    if budget_ms is not None:
        environ["EMMA_DECISION_BUDGET_MS"] = str(budget_ms)
    config = load_config(DecisionConfig, [], environ)
    redis = connect_redis(config.redis_url)
    sources = {
        kind: connect_dependencies(dataclasses.replace(config, dependencies=kind), environ)
        for kind in DEPENDENCIES
    }
    core = build_decider(config, redis, sources["services"])
    decider: Decider = core.decider
    if seed is not None:
        decider.event_ids = seeded_event_ids(seed)
        # The SDK draws trace ids, and with them which traces are sampled, from `random`.
        random.seed(seed)
    inputs = _inputs(workload.decide_requests(workload.DEFAULT))
    answers = {}
    for request in inputs:
        answers[id(request)] = (
            await sources["services"].customer(request, 1.0),
            await sources["services"].situation(request, 1.0),
        )
    replayed = Replayed(answers)
    # As a service does once built (emma.runtime.main): full collections then leave the
    # catalog, model, zone polygons and modules alone.
    freeze_heap()

    degraded: collections.Counter[str] = collections.Counter()

    server_tracer = trace.get_tracer("bench.decision")

    async def decide(index: int) -> None:
        # Under a span like the server's, so that the pipeline's spans have the parent
        # (sampled or not) they have in a service.
        with server_tracer.start_as_current_span("/emma.decision.v1.DecisionService/Decide"):
            decision = await decider.decide(inputs[index % len(inputs)])
        degraded.update(part.value for part in decision.degraded)

    async def ping(index: int) -> None:
        await redis.ping()

    modes: dict[str, list[float]] = {mode: [] for mode in MODES if mode in modes_wanted}
    candidates: list[int] = []
    for _ in range(rounds):
        for mode in modes:
            if mode == "redis_ping":
                modes[mode].append(await _cpu_per_call(ping, decisions))
                continue
            decider.dependencies = replayed if mode == "logic" else sources[mode]
            await _cpu_per_call(decide, warmup)
            modes[mode].append(await _cpu_per_call(decide, decisions))
    for request in inputs[:50]:
        candidates.append((await decider.decide(request)).candidate_count)
    if profile_path:
        decider.dependencies = sources["in-process"]
        profiler = cProfile.Profile()
        profiler.enable()
        await _cpu_per_call(decide, decisions)
        profiler.disable()
        profiler.dump_stats(profile_path)
    await core.log_buffer.close(1.0)
    for source in sources.values():
        await source.close()
    await redis.aclose()
    decider.bandit.close()
    return {
        "decisions_per_round": decisions,
        "rounds": rounds,
        "mean_candidates": statistics.fmean(candidates),
        # A degraded decision did less work: the figures hold only when this stays near 0.
        "degraded": dict(degraded),
        "cpu_ms_per_call": {mode: [round(v, 3) for v in values] for mode, values in modes.items()},
        "cpu_ms_per_call_median": {
            mode: round(statistics.median(values), 3) for mode, values in modes.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decision", description=__doc__)
    parser.add_argument("--decisions", type=int, default=3000, help="decisions per round")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured decisions first")
    parser.add_argument("--profile", help="write a cProfile of the in-process mode here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--mode", choices=MODES, action="append", help="only these modes (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument(
        "--budget-ms",
        type=float,
        help="Decide's budget (default: the service's); raise it under valgrind, whose "
        "slowness would otherwise degrade every decision",
    )
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="install the SDK's tracer and meter providers as a service process does "
        "(sampler and exporters from OTEL_* variables; metrics not served); without it the "
        "API's no-op providers",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="the same event ids, draws and trace ids in every run (default: fresh ones, as "
        "a service makes)",
    )
    args = parser.parse_args(argv)
    if args.telemetry:
        configure_metrics("decision", "127.0.0.1", 0)
        configure_tracing("decision").add_span_processor(RedisLatencyProcessor())
    env = {"EMMA_CATALOG": str(BENCH_CATALOG)}
    with Mesh(ports=MeshPorts.free(), env=env) as mesh:
        asyncio.run(_seed(mesh))
        report = eventloop.run(
            _measure(
                mesh,
                args.decisions,
                args.warmup,
                args.profile,
                tuple(args.mode or MODES),
                args.rounds,
                args.budget_ms,
                args.seed,
            )
        )
    report["event_loop"] = eventloop.loop_name()
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(f"{'mode':<12}{'CPU ms per call (median of rounds)':>36}   rounds")
        for mode, value in report["cpu_ms_per_call_median"].items():
            rounds = ", ".join(f"{v:.3f}" for v in report["cpu_ms_per_call"][mode])
            print(f"{mode:<12}{value:>36.3f}   {rounds}")
        print(f"mean candidates scored: {report['mean_candidates']:.1f}")
        print(f"degraded parts: {report['degraded'] or 'none'}")
    return 0


async def _seed(mesh: Mesh) -> None:
    async with mesh_channel(mesh.profile_address) as channel:
        await workload.seed(channel, workload.DEFAULT)


if __name__ == "__main__":
    sys.exit(main())
