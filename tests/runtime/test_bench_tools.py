"""The interceptor benchmark and the instruction counter run and report what they promise."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from bench import interceptors


async def test_every_interceptor_stack_answers_calls_and_costs_cpu() -> None:
    for name, make in interceptors.stacks().items():
        assert await interceptors.cpu_per_call(make(), 20) > 0, name


def _per_call(output: str) -> list[float]:
    return [float(v.replace(",", "")) for v in re.findall(r"([\d,.]+) thousand", output)]


@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instructions_per_call_are_counted_the_same_twice() -> None:
    # A loop whose every unit does the same work: 10,000 list appends.
    work = "import sys\nxs = []\nfor _ in range(int(sys.argv[1]) * 10_000): xs.append(0)"
    command = [sys.executable, "-m", "bench.instructions", "--small", "5", "--large", "15"]
    result = subprocess.run(
        [*command, "--repeat", "2", "--", sys.executable, "-c", work, "{n}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=280,
    )
    first, second = _per_call(result.stdout)
    assert first > 100  # thousands of instructions for 10,000 appends, at the least
    assert abs(first - second) / first < 0.005


def test_the_counter_refuses_a_command_without_the_number() -> None:
    command = [sys.executable, "-m", "bench.instructions", "--", sys.executable, "-c", "pass"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "{n}" in result.stderr
