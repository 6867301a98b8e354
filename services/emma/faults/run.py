"""One fault run: Redis with AOF, the mesh, the load, the faults in turn, then the audit."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import tempfile
import time
from pathlib import Path

import grpc
import redis

from emma.faults import audit as auditing
from emma.faults.load import Call, Load
from emma.faults.processes import FaultMesh
from emma.faults.redis_aof import AofRedis
from emma.faults.report import Report, build
from emma.faults.scenario import Timing, Window, faults, run_faults
from emma.faults.server_time import over_budget_waterfalls, with_server_times
from emma.loadgen import workload
from emma.loadgen.machine import CpuSampler
from emma.traces.receiver import TraceServer
from emma_client import AsyncEmmaClient


@dataclasses.dataclass(frozen=True)
class Profile:
    """How hard and how long: Decide calls per second, the fault timing, the customers."""

    rate: float
    timing: Timing
    customers: int
    # Short, so every decision's window closes (and is learned) soon after the run.
    reward_window_s: float
    budget_ms: float = 50.0
    # Share of Decide traces exported, whose server spans give Decide's own time: all of
    # them at 50/s; at 200/s exporting every span would cost the two cores more than the
    # faults do, and a share still gives thousands of spans.
    trace_ratio: float = 1.0
    # EMMA_DECISION_DEPENDENCIES of the replicas. Services by default, so that the profile
    # and context faults reach Decide; in process, only Redis's do (the profile store).
    dependencies: str = "services"


PROFILES = {
    # About a minute in all, for CI.
    "short": Profile(rate=50, timing=Timing(3.0, 1.0, 2.0, 1), customers=100, reward_window_s=4),
    # Each fault three times, longer holds, four times the rate.
    "long": Profile(
        rate=200,
        timing=Timing(10.0, 5.0, 5.0, 3),
        customers=500,
        reward_window_s=10,
        trace_ratio=0.05,
    ),
}


def service_env(profile: Profile, traces_endpoint: str = "") -> dict[str, str]:
    env = {
        "EMMA_REWARD_WINDOW_S": f"{profile.reward_window_s:g}",
        "EMMA_DECISION_BUDGET_MS": f"{profile.budget_ms:g}",
        "EMMA_DECISION_DEPENDENCIES": profile.dependencies,
        # A killed learner's lease must not keep its successor waiting for long.
        "EMMA_LEARNER_LEASE_S": "3",
    }
    if traces_endpoint:
        # Traces exported often: each Decide's server span says how long the decision
        # service took, apart from the caller's queueing and the network.
        env.update(
            OTEL_TRACES_SAMPLER="parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG=f"{profile.trace_ratio:g}",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=traces_endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_BSP_SCHEDULE_DELAY="500",
        )
    return env


async def run(profile: Profile, run_dir: Path | None = None) -> Report:
    """Runs the whole suite and returns its report; leaves no process behind."""
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="emma-faults-"))
    store = AofRedis()
    # Room for every trace of the run (a few seconds of calm and each fault's windows).
    traces = TraceServer(port=0, max_traces=max(10_000, int(profile.rate * 900))).start()
    await asyncio.to_thread(store.start)
    try:
        mesh = FaultMesh(store.url, run_dir, service_env(profile, traces.endpoint))
        await asyncio.to_thread(mesh.start)
        try:
            driven = await _drive(profile, mesh, store)
        finally:
            # Stopping flushes each service's unexported spans.
            await asyncio.to_thread(mesh.stop)
        calls = with_server_times(driven.calls, traces.store)
        write_calls(run_dir / "calls.csv", calls)
        late = over_budget_waterfalls(calls, traces.store, profile.budget_ms)
        (run_dir / "over-budget-traces.txt").write_text(late + "\n" if late else "")
        return driven.report(calls)
    finally:
        traces.stop()
        await asyncio.to_thread(store.close)


def write_calls(path: Path, calls: list[Call]) -> None:
    """Every call, for plots and for looking into a missed goal (times relative to the first)."""
    origin = min((c.due for c in calls), default=0.0)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "kind",
                "due_s",
                "latency_ms",
                "send_lag_ms",
                "server_ms",
                "error",
                "degraded",
                "fallback",
            ]
        )
        for call in calls:
            writer.writerow(
                [
                    call.kind,
                    f"{call.due - origin:.4f}",
                    f"{call.latency_ms:.3f}",
                    f"{call.send_lag_ms:.3f}",
                    "" if call.server_ms is None else f"{call.server_ms:.3f}",
                    call.error,
                    "+".join(call.degraded),
                    int(call.fallback),
                ]
            )


@dataclasses.dataclass(frozen=True)
class Driven:
    """What the load and the faults left, before the server times are known."""

    profile: Profile
    calls: list[Call]
    windows: list[Window]
    audit: auditing.Audit
    duration_s: float
    warmup_until: float
    # The machine's time (steal, idle) sampled while the load ran.
    machine: CpuSampler | None = None

    def report(self, calls: list[Call]) -> Report:
        return build(
            calls,
            self.windows,
            self.audit,
            self.profile.rate,
            self.profile.budget_ms,
            self.duration_s,
            self.warmup_until,
            self.machine,
        )


async def _drive(profile: Profile, mesh: FaultMesh, store: AofRedis) -> Driven:
    load = workload.Workload(customers=profile.customers, prefix="faults")
    async with grpc.aio.insecure_channel(mesh.address("profile")) as channel:
        await workload.seed(channel, load)
    async with AsyncEmmaClient(mesh.decision_target) as client, CpuSampler() as machine:
        driver = Load(client, profile.rate, load)
        stop = asyncio.Event()
        started = time.perf_counter()
        running = asyncio.get_running_loop().create_task(driver.run(stop))
        try:
            windows = await run_faults(faults(mesh, store), profile.timing)
        finally:
            stop.set()
            calls = await running
        duration = time.perf_counter() - started
    client_redis = redis.Redis.from_url(store.url)
    try:
        timeout = profile.reward_window_s + 30
        audit = await asyncio.to_thread(
            auditing.audit, client_redis, calls, profile.reward_window_s, timeout
        )
    finally:
        client_redis.close()
    # The first half of the calm start warms connections and caches up; it is not measured.
    warmup_until = started + profile.timing.warmup_s / 2
    return Driven(profile, calls, list(windows), audit, duration, warmup_until, machine)
