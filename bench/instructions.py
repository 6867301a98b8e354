"""Instructions per call of a benchmark, counted by valgrind: comparisons noise cannot blur.

    .venv/bin/python -m bench.instructions [--small 200] [--large 600] -- \\
        .venv/bin/python -m bench.interceptors --rounds 1 --stack emma --calls {n}

Runs the command under valgrind's callgrind twice, with `{n}` replaced by `--small` and
by `--large`, and prints (instructions of the large run - those of the small one) /
(large - small): what one more call costs, start-up and warm-up cancelled out. Only the
command's own process is counted (a private mesh it starts runs natively). The command
runs about 50 times slower than natively: give it time (bench.decision: --budget-ms). Instructions
are not time (cache misses and system calls weigh differently), but on a virtual machine
whose speed drifts by tens of per cent within minutes they tell a 2 % change apart,
which CPU time cannot; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(command: list[str], n: int) -> tuple[int, str]:
    """Instructions the command's process executed with `{n}` replaced by `n`, and what it
    printed."""
    argv = [part.replace("{n}", str(n)) for part in command]
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={Path(scratch) / 'callgrind.out'}",
                *argv,
            ],
            capture_output=True,
            text=True,
            check=False,
            # Python seeds its string hashes at random; dictionaries laid out differently
            # take different numbers of instructions.
            env={"PYTHONHASHSEED": "0", **os.environ},
        )
    found = _COLLECTED.search(result.stderr)
    if result.returncode != 0 or found is None:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"the command failed under valgrind (exit {result.returncode})")
    return int(found.group(1)), result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --; {n} is replaced")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    if not any("{n}" in part for part in command):
        parser.error("the command needs {n} where the number of calls goes")
    for number in range(1, args.repeat + 1):
        small, _ = instructions(command, args.small)
        large, printed = instructions(command, args.large)
        per_call = (large - small) / (args.large - args.small)
        # The command's own last words (e.g. bench.decision's degraded parts: a decision
        # that timed out under valgrind's slowness does less work, and the count says so).
        last = printed.strip().splitlines()[-1:] if printed.strip() else []
        print(f"pair {number}: {per_call / 1e3:,.1f} thousand instructions per call", *last)


if __name__ == "__main__":
    main()
