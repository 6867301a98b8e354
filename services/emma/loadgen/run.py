"""One benchmark run: start what is needed, drive each target in turn, write the report."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from emma.loadgen import cpu, driver, floor, machine, workload
from emma.loadgen.recorder import Recorder
from emma.loadgen.schedule import Schedule
from emma.runtime import eventloop
from emma.runtime.stream_groups import unread

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("floor", "decide")
# Longest wait for the profile-event consumers to work through the seeded events.
SETTLE_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """What to drive and how hard; `addresses` maps service -> host:port."""

    addresses: Mapping[str, str]
    targets: Sequence[str] = DEFAULT_TARGETS
    rate: float = 200.0
    duration_s: float = 10.0
    warmup_s: float = 2.0
    # The targets in turn, this many times over (floor, decide, floor, decide, ...).
    rounds: int = 1
    timeout_s: float = 1.0
    connections: int = 1
    workload: workload.Workload = workload.DEFAULT
    seed_customers: bool = True
    # Process ids of the services (when known), for their CPU time per request.
    pids: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # The private mesh's Redis and profile-events stream: after seeding, the measurement
    # waits until every consumer of that stream (trigger engine, erasure consumer) has
    # caught up, so their work on the seeded events is not measured as Decide's.
    redis_url: str | None = None
    events_stream: str = ""

    def schedule(self) -> Schedule:
        return Schedule(self.rate, self.duration_s, self.warmup_s)


def missing_addresses(settings: BenchSettings) -> list[str]:
    """Services a target needs whose address is not known (the floor starts its own)."""
    needed = {driver.TARGETS[t] for t in settings.targets} - {"floor"}
    return sorted(needed - set(settings.addresses))


async def _drive(
    settings: BenchSettings, progress: Callable[[str], None]
) -> tuple[list[dict[str, Recorder]], floor.Sizes]:
    addresses = dict(settings.addresses)
    if settings.seed_customers and "profile" in addresses:
        async with driver.channel(addresses["profile"]) as chan:
            accepted = await workload.seed(chan, settings.workload)
        progress(f"seeded {settings.workload.customers} customers ({accepted} new events)")
        if settings.redis_url and settings.events_stream:
            waited = await consumers_caught_up(settings.redis_url, settings.events_stream)
            progress(f"profile-event consumers caught up after {waited:.1f} s")
    sizes = await driver.measure_sizes(addresses, settings.workload)
    rounds: list[dict[str, Recorder]] = []
    chain: floor.EchoChain | None = None
    try:
        if "floor" in settings.targets:
            chain = floor.EchoChain(sizes).start()
            addresses["floor"] = chain.address
        for number in range(1, settings.rounds + 1):
            recorders: dict[str, Recorder] = {}
            for target in settings.targets:
                pids = (
                    {f"floor.{n}": pid for n, pid in zip("bca", chain.pids, strict=True)}
                    if target == "floor" and chain is not None
                    else dict(settings.pids)
                )
                which = f"round {number}/{settings.rounds}, " if settings.rounds > 1 else ""
                progress(
                    f"{which}{target}: {settings.rate:g}/s for {settings.warmup_s:g} s warm-up "
                    f"+ {settings.duration_s:g} s"
                )
                phase = driver.Phase(
                    target,
                    addresses[driver.TARGETS[target]],
                    settings.schedule(),
                    settings.timeout_s,
                    settings.connections,
                )
                recorders[target] = await _measure(phase, settings, sizes, pids)
            rounds.append(recorders)
    finally:
        if chain is not None:
            chain.stop()
    return rounds, sizes


async def _measure(
    phase: driver.Phase, settings: BenchSettings, sizes: floor.Sizes, pids: Mapping[str, int]
) -> Recorder:
    """One target for one round, with the CPU of the processes under test and the machine's."""
    before, workers_before = cpu.snapshot(pids), cpu.worker_snapshot(pids)
    generator_before = cpu.cpu_seconds(os.getpid())
    async with machine.CpuSampler() as sampler:
        recorder = await driver.run_phase(phase, settings.workload, sizes)
    total = recorder.warmup + recorder.issued
    recorder.cpu_ms = cpu.per_request_ms(before, cpu.snapshot(pids), total)
    recorder.worker_cpu_ms = cpu.per_worker_ms(workers_before, cpu.worker_snapshot(pids), total)
    generator_after = cpu.cpu_seconds(os.getpid())
    if generator_before is not None and generator_after is not None and total > 0:
        recorder.generator_cpu_ms = round((generator_after - generator_before) * 1000 / total, 3)
    recorder.machine = sampler
    return recorder


async def consumers_caught_up(
    redis_url: str, stream: str, timeout_s: float = SETTLE_TIMEOUT_S
) -> float:
    """Seconds until every consumer group of `stream` has read and acknowledged all of it
    (or `timeout_s` passed: the run goes on, and the CPU figures say so)."""
    # Bytes, not text: XINFO STREAM returns the first and last entries, which are protobuf.
    client = aioredis.Redis.from_url(redis_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout_s:
            groups: list[dict[str, Any]] = await client.xinfo_groups(stream)
            last = (await client.xinfo_stream(stream))["last-generated-id"]
            if all(not unread(g, last) and not g.get("pending") for g in groups):
                break
            await asyncio.sleep(0.2)
    except redis.ResponseError:  # no such stream: nothing to wait for
        pass
    finally:
        await client.aclose()
    return time.monotonic() - started


def bench(settings: BenchSettings, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Runs every target in order at the same rate; returns the JSON-ready report."""
    from emma.loadgen.report import document

    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    rounds, sizes = eventloop.run(_drive(settings, say))
    described = {
        "targets": list(settings.targets),
        "rate": settings.rate,
        "duration_s": settings.duration_s,
        "warmup_s": settings.warmup_s,
        "rounds": settings.rounds,
        "timeout_s": settings.timeout_s,
        "connections": settings.connections,
        "customers": settings.workload.customers,
        "pos_share": settings.workload.pos_share,
        "event_loop": eventloop.loop_name(),
        "floor_sizes": dataclasses.asdict(sizes),
    }
    return document(rounds, dict.fromkeys(settings.targets, settings.rate), described)


def write(report: Mapping[str, Any], json_path: Path | None, plot_path: Path | None) -> None:
    import json

    from emma.loadgen.report import plot

    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if plot_path is not None:
        settings = report["settings"]
        plot(report, plot_path, f"emma bench: {settings['rate']:g}/s, {settings['duration_s']:g} s")
