"""The interceptor, transport and instruction benchmarks run and report what they promise."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from bench import interceptors, transport


async def test_every_interceptor_stack_answers_calls_and_costs_cpu() -> None:
    for name, make in interceptors.stacks().items():
        assert await interceptors.cpu_per_call(make(), 20) > 0, name


def test_each_transport_makes_its_calls_and_counts_its_server_threads_apart() -> None:
    grpc_hop = transport.measure("grpc", rate=200, seconds=0.25)
    tcp_hop = transport.measure("tcp", rate=200, seconds=0.25)
    for hop in (grpc_hop, tcp_hop):
        assert hop.calls == 50
        assert hop.server_loop_us > 0 and hop.caller_us > 0
        assert 0 < hop.p50_us <= hop.p99_us
    # gRPC's server works on threads besides its event loop's; the TCP echo has none.
    assert grpc_hop.server_other_us > 0
    assert tcp_hop.server_other_us == 0


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
