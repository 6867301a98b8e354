"""How fast this machine runs a fixed piece of pure Python, slice after slice.

    .venv/bin/python -m bench.machine_speed [--slices 8] [--slice-s 0.7]

Prints, per slice of CPU time, how many rounds of the same small work (building and
sorting dicts, parsing JSON: the kind of work Decide's pipeline does) ran per second,
and the steal the kernel counted meanwhile. On a virtual machine the figures drift
between slices even without steal; that drift is why `emma bench --rounds` compares each
target with a floor measured beside it.
"""

from __future__ import annotations

import argparse
import json
import time

from emma.loadgen.machine import read_cpu_times, share_between

_DOCUMENT = json.dumps({"items": list(range(200)), "name": "y" * 50}).encode()


def rate(slice_s: float) -> float:
    """Rounds of the work per second of this process's CPU time, over `slice_s` of it."""
    started = time.process_time()
    rounds = 0
    while time.process_time() - started < slice_s:
        for _ in range(200):
            sorted({i: str(i) for i in range(50)}.values())
            json.loads(_DOCUMENT)
        rounds += 1
    return rounds / (time.process_time() - started)


def measure(slices: int, slice_s: float) -> list[float]:
    """Prints each slice's speed and steal; returns the speeds."""
    speeds = []
    for number in range(1, slices + 1):
        before = read_cpu_times()
        speed = rate(slice_s)
        after = read_cpu_times()
        share = (
            share_between([before, after], before.at, after.at)
            if before is not None and after is not None
            else None
        )
        steal = f"{share.steal_pct:.1f} %" if share is not None else "-"
        print(f"slice {number}: {speed:7.1f} rounds/s  steal {steal}", flush=True)
        speeds.append(speed)
    print(f"slowest / fastest: {min(speeds) / max(speeds):.2f}")
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--slice-s", type=float, default=0.7)
    args = parser.parse_args()
    measure(args.slices, args.slice_s)


if __name__ == "__main__":
    main()
