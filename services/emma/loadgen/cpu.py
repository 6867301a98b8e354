"""CPU time of the processes under test, from /proc: a load figure that noise barely moves.

Latency on a shared machine swings with whatever else runs; the CPU seconds a service
spends per request do not, so they show what a change saves even when percentiles can't.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` so far; None where /proc cannot tell (not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and theirs (a service's worker processes)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                for child in children.read().split():
                    found += [int(child), *descendants(int(child))]
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of `pid` and of every process under it that is still running."""
    own = cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(cpu_seconds(child) or 0.0 for child in descendants(pid))


def snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process with its workers."""
    taken = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    return {name: seconds for name, seconds in taken.items() if seconds is not None}


def per_request_ms(
    before: Mapping[str, float], after: Mapping[str, float], requests: int
) -> dict[str, float]:
    """CPU milliseconds per request of each process between two snapshots."""
    if requests <= 0:
        return {}
    return {
        name: round((after[name] - before[name]) * 1000 / requests, 3)
        for name in before
        if name in after
    }


def worker_snapshot(pids: Mapping[str, int]) -> dict[str, dict[int, float]]:
    """CPU seconds so far of each process under each named one that has several (a
    service's worker processes), by process id."""
    taken: dict[str, dict[int, float]] = {}
    for name, pid in pids.items():
        children = {child: cpu_seconds(child) for child in descendants(pid)}
        known = {child: seconds for child, seconds in children.items() if seconds is not None}
        if len(known) > 1:
            taken[name] = known
    return taken


def per_worker_ms(
    before: Mapping[str, Mapping[int, float]],
    after: Mapping[str, Mapping[int, float]],
    requests: int,
) -> dict[str, list[float]]:
    """CPU milliseconds per request of each worker that worked between two snapshots, the
    busiest first: with one port shared, how evenly the callers' connections spread."""
    if requests <= 0:
        return {}
    spread = {}
    for name, workers in before.items():
        later = after.get(name, {})
        spent = [later[pid] - seconds for pid, seconds in workers.items() if pid in later]
        # Helpers that do no request work (multiprocessing's resource tracker) spend nothing.
        busy = sorted((s * 1000 / requests for s in spent if s > 0), reverse=True)
        if len(busy) > 1:
            spread[name] = [round(ms, 3) for ms in busy]
    return spread
