"""The machine's stolen and idle time while a target runs: /proc/stat read, interpolated,
sampled, and shown in the report's timeline, table and per-worker CPU."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emma.loadgen import cpu
from emma.loadgen.machine import CpuSampler, CpuTimes, read_cpu_times, share_between
from emma.loadgen.recorder import Recorder
from emma.loadgen.report import document, noise_warnings, table, timeline
from emma.loadgen.schedule import Sent

ON_LINUX = Path("/proc/stat").exists()


def test_the_cpu_line_of_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 5 40 800 20 1 2 32 7 0\ncpu0 50 2 20 400 10 0 1 16 3 0\n")
    taken = read_cpu_times(str(stat), clock=lambda: 12.5)
    assert taken == CpuTimes(at=12.5, total=1000, idle=820, steal=32)
    assert read_cpu_times(str(tmp_path / "absent")) is None
    (tmp_path / "other").write_text("intr 1 2 3\n")
    assert read_cpu_times(str(tmp_path / "other")) is None


def test_shares_are_interpolated_between_samples() -> None:
    samples = [
        CpuTimes(at=0.0, total=0, idle=0, steal=0),
        CpuTimes(at=1.0, total=200, idle=100, steal=0),
        CpuTimes(at=2.0, total=400, idle=100, steal=100),
    ]
    first = share_between(samples, 0.0, 1.0)
    assert first is not None and (first.steal_pct, first.idle_pct) == (0.0, 50.0)
    second = share_between(samples, 1.0, 2.0)
    assert second is not None and (second.steal_pct, second.idle_pct) == (50.0, 0.0)
    # Half of each second: a quarter of the stolen ticks of the whole.
    middle = share_between(samples, 0.5, 1.5)
    assert middle is not None and (middle.steal_pct, middle.idle_pct) == (25.0, 25.0)
    assert share_between(samples, -0.5, 1.0) is None  # before the first sample
    assert share_between(samples, 1.0, 2.5) is None  # after the last
    assert share_between(samples[:1], 0.0, 0.0) is None


@pytest.mark.skipif(not ON_LINUX, reason="/proc/stat is Linux's")
async def test_the_sampler_reads_this_machine_while_in_use() -> None:
    async with CpuSampler(interval_s=0.05) as sampler:
        began = time.perf_counter()
        await asyncio.sleep(0.3)
        ended = time.perf_counter()
    assert len(sampler.samples) >= 4
    pairs = zip(sampler.samples, sampler.samples[1:], strict=False)
    assert all(a.at < b.at and a.total <= b.total for a, b in pairs)
    count = len(sampler.samples)
    await asyncio.sleep(0.1)
    assert len(sampler.samples) == count  # stopped on leaving
    share = sampler.share(began, ended)
    assert share is not None
    assert 0.0 <= share.steal_pct <= 100.0 and 0.0 <= share.idle_pct <= 100.0
    assert share.steal_pct + share.idle_pct <= 100.0


def test_the_report_gives_steal_per_second_and_per_target() -> None:
    recorder = Recorder(start=0.0)
    for index in range(400):  # two seconds at 200/s, due from 10.0 s
        due = 10.0 + index / 200
        recorder.record(Sent(index, due, due, due + 0.002, None))
    sampler = CpuSampler()
    # 10 % of the first second stolen, 40 % of the second.
    sampler.samples = [
        CpuTimes(at=10.0, total=0, idle=0, steal=0),
        CpuTimes(at=11.0, total=200, idle=50, steal=20),
        CpuTimes(at=12.1, total=420, idle=60, steal=108),
    ]
    recorder.machine = sampler
    points = timeline(recorder)
    assert [p["steal_pct"] for p in points] == [10.0, 40.0]
    report = document([{"decide": recorder}], {"decide": 200.0}, {"rate": 200.0})
    machine = report["results"]["decide"]["machine"]
    # From the first request's due time to the last answer.
    whole = share_between(sampler.samples, 10.0, recorder.last_done)
    assert whole is not None and 10.0 < whole.steal_pct < 40.0
    assert machine == {"steal_pct": whole.steal_pct, "idle_pct": whole.idle_pct}
    header, row = table(report).splitlines()
    assert header.split()[-2:] == ["steal", "%"]
    assert row.split()[-1] == f"{machine['steal_pct']:.1f}"


def test_without_samples_the_report_says_nothing_of_the_machine() -> None:
    recorder = Recorder(start=0.0)
    recorder.record(Sent(0, 1.0, 1.0, 1.001, None))
    result = document([{"floor": recorder}], {"floor": 1.0}, {})["results"]["floor"]
    assert result["machine"] == {}
    assert "steal_pct" not in result["timeline"][0]


def test_cpu_per_request_of_each_worker_busiest_first() -> None:
    before = {"decision": {11: 1.0, 12: 2.0, 13: 0.5}, "profile": {21: 1.0}}
    after = {"decision": {11: 1.6, 12: 2.2, 13: 0.5}, "profile": {21: 1.5}}
    # 100 requests: 6 ms and 2 ms each; the idle helper (13) and one-worker services left out.
    assert cpu.per_worker_ms(before, after, 100) == {"decision": [6.0, 2.0]}
    assert cpu.per_worker_ms(before, after, 0) == {}


@pytest.mark.skipif(not ON_LINUX, reason="/proc is Linux's")
def test_the_workers_of_a_real_process_tree(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    spin = f"import os\nwhile not os.path.exists({str(stop)!r}): pass\n"
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys\n"
         f"children = [subprocess.Popen([sys.executable, '-c', {spin!r}]) for _ in range(2)]\n"
         "[c.wait() for c in children]\n"],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while len(cpu.worker_snapshot({"svc": parent.pid}).get("svc", {})) < 2:
            assert time.monotonic() < deadline, "the children never showed"
            time.sleep(0.01)
        before = cpu.worker_snapshot({"svc": parent.pid})
        assert set(before["svc"]) == set(_children(parent.pid))
        time.sleep(0.3)  # both spin meanwhile
        spread = cpu.per_worker_ms(before, cpu.worker_snapshot({"svc": parent.pid}), 1)
        assert len(spread["svc"]) == 2 and spread["svc"][0] >= spread["svc"][1] > 0
    finally:
        stop.touch()
        parent.wait(timeout=10)
    assert cpu.worker_snapshot({"svc": parent.pid}) == {}


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def test_targets_run_while_other_guests_took_the_machine_are_called_noisy() -> None:
    def result(steal: float, seconds: list[float]) -> dict[str, object]:
        return {
            "machine": {"steal_pct": steal, "idle_pct": 50.0},
            "timeline": [{"t": float(i), "steal_pct": s} for i, s in enumerate(seconds)],
        }

    report = {
        "results": {
            "floor": result(0.4, [0.0, 1.0, 0.2]),
            "decision.health": result(1.5, [0.0, 12.0, 0.5]),  # one bad second
            "decide": result(3.2, [3.0, 3.5, 3.1]),
            "profile.get": {"machine": {}, "timeline": []},  # not sampled
        }
    }
    warnings = noise_warnings(report)
    assert [line.split(":")[0] for line in warnings] == ["decision.health", "decide"]
    assert "3.2 % of the machine stolen" in warnings[1] and "up to 3.5 %" in warnings[1]
