"""The faults of a run, one after another while the load runs: inject, hold, recover, settle."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence

from emma.faults.processes import DECISION_REPLICAS, FaultMesh
from emma.faults.redis_aof import AofRedis

# The replica that is killed; the other keeps serving.
KILLED_REPLICA = DECISION_REPLICAS[0]


@dataclasses.dataclass(frozen=True)
class Fault:
    """`inject` breaks something, `recover` repairs it and returns once it serves again."""

    name: str
    inject: Callable[[], None]
    recover: Callable[[], None]


@dataclasses.dataclass
class Window:
    """When one fault was in force (perf_counter seconds): injected, repaired, settled."""

    name: str
    injected: float
    recovered: float = 0.0
    settled: float = 0.0

    @property
    def recovery_s(self) -> float:
        return self.recovered - self.injected

    def covers(self, instant: float) -> bool:
        return self.injected <= instant <= self.settled


def faults(mesh: FaultMesh, redis: AofRedis, freeze: str = "profile") -> list[Fault]:
    """Every fault of the suite, in the order it runs them."""

    def kill(name: str) -> Fault:
        return Fault(f"kill {name}", lambda: mesh.kill(name), lambda: _restart(mesh, name))

    return [
        kill("profile"),
        kill("context"),
        kill(KILLED_REPLICA),
        kill("learner"),
        Fault("stop redis (AOF)", redis.stop, lambda: _start(redis)),
        Fault(f"freeze {freeze} (SIGSTOP)", lambda: mesh.freeze(freeze), lambda: mesh.thaw(freeze)),
    ]


def _restart(mesh: FaultMesh, name: str) -> None:
    mesh.restart(name)


def _start(redis: AofRedis) -> None:
    redis.start()


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds of calm before the first fault, each fault's hold, and calm after each."""

    warmup_s: float = 3.0
    hold_s: float = 1.0
    settle_s: float = 2.0
    rounds: int = 1


async def run_faults(
    faults_: Sequence[Fault], timing: Timing, clock: Callable[[], float] = time.perf_counter
) -> list[Window]:
    """Runs each fault in turn; blocking steps (waiting for SERVING) run in a thread, so the
    load on the same event loop keeps its schedule."""
    windows: list[Window] = []
    await asyncio.sleep(timing.warmup_s)
    for _ in range(timing.rounds):
        for fault in faults_:
            window = Window(fault.name, clock())
            windows.append(window)
            await asyncio.to_thread(fault.inject)
            await asyncio.sleep(timing.hold_s)
            await asyncio.to_thread(fault.recover)
            window.recovered = clock()
            await asyncio.sleep(timing.settle_s)
            window.settled = clock()
    return windows
