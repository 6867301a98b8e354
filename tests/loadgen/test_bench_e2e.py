"""`emma bench` end to end: the echo chain alone through the CLI, and every target on a mesh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import machine_speed
from emma.cli.bench import BENCH_CATALOG
from emma.cli.main import main
from emma.cli.mesh import Mesh, MeshPorts
from emma.loadgen.run import BenchSettings, bench
from emma.loadgen.workload import Workload


def test_floor_through_the_cli_writes_json_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path, plot_path = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(
        ["bench", "--target", "floor", "--rate", "50", "--duration", "1", "--warmup", "0.5",
         "--timeout", "5", "--json", str(report_path), "--plot", str(plot_path)]
    )  # fmt: skip
    assert code == 0
    report = json.loads(report_path.read_text())
    floor = report["results"]["floor"]
    assert floor["issued"] == 50
    assert floor["ok"] == 50
    assert floor["errors"] == {}
    assert report["settings"]["mesh"] == "echo chain only"
    assert 0 < floor["latency_ms"]["p50"] <= floor["latency_ms"]["max"]
    assert plot_path.read_bytes()[:4] == b"\x89PNG"
    assert "floor" in capsys.readouterr().out


def test_rounds_through_the_cli_sum_their_requests_and_keep_each_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "bench.json"
    code = main(
        ["bench", "--target", "floor", "--rate", "50", "--duration", "1", "--warmup", "0.2",
         "--rounds", "2", "--timeout", "5", "--json", str(report_path)]
    )  # fmt: skip
    assert code == 0
    report = json.loads(report_path.read_text())
    floor = report["results"]["floor"]
    assert report["settings"]["rounds"] == 2
    assert (floor["issued"], floor["ok"]) == (100, 100)
    assert len(floor["rounds"]) == 2
    assert all(r["latency_ms"]["p50"] > 0 for r in floor["rounds"])
    assert "floor p50 by round:" in capsys.readouterr().out


def test_a_target_without_an_address_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--target", "decide", "--profile-addr", "127.0.0.1:1"])
    assert code == 2
    assert "no address for decision" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with Mesh(
        ports=MeshPorts.free(),
        env={"EMMA_CATALOG": str(BENCH_CATALOG), "EMMA_DECISION_WORKERS": "2"},
        run_dir=tmp_path_factory.mktemp("mesh"),
    ) as running:
        yield running


def test_every_target_against_a_running_mesh(mesh: Mesh) -> None:
    targets = (
        "floor",
        "decide",
        "decision.health",
        "profile.get",
        "profile.record",
        "context.resolve",
    )
    settings = BenchSettings(
        addresses={
            "decision": mesh.decision_address,
            "profile": mesh.profile_address,
            "context": mesh.context_address,
        },
        targets=targets,
        pids=mesh.pids,
        rate=40,
        duration_s=1.0,
        warmup_s=0.5,
        timeout_s=5.0,
        workload=Workload(customers=20),
    )
    report = bench(settings, progress=lambda line: None)
    assert list(report["results"]) == list(targets)
    for name, result in report["results"].items():
        assert result["issued"] == 40, name
        assert result["ok"] == 40, (name, result["errors"])
    decide = report["results"]["decide"]
    # The bench catalog gives till and app decisions more than EMMA_MAX_ACTIONS actions.
    assert decide["mean_candidates"] > 40
    assert decide["degraded_count"] >= 0
    assert set(decide["ratio_to_floor"]) == {"p50", "p90", "p99", "p99.9", "max"}
    sizes = report["settings"]["floor_sizes"]
    assert sizes["response"] > 100  # measured from a real Decide, not the default
    # The decision service's workers that worked (in 1.5 s, connections may all have
    # gone to one of the two), busiest first, together no more than the whole service.
    workers = decide["worker_cpu_ms_per_request"].get("decision", [])
    assert workers == sorted(workers, reverse=True)
    assert sum(workers) <= decide["cpu_ms_per_request"]["decision"] + 0.01
    if Path("/proc/stat").exists():
        # The generator's own CPU: its calls cost it something, and far less than a second.
        assert 0.0 < decide["generator_cpu_ms_per_request"] < 1000.0
        assert 0.0 <= decide["machine"]["steal_pct"] <= 100.0
        assert all("steal_pct" in point for point in decide["timeline"])


def _past_capacity_rate() -> int:
    """Calls a second well past what two workers decide in full here, yet within what they
    answer with fallbacks while the load generator sends from the same two cores.

    Both bounds move with the machine's speed: 1,000 a second where bench.machine_speed's
    work runs 200 rounds a second or more, proportionally fewer on a slower machine. At
    106 rounds a second, 1,000 calls a second left 1,452 of 2,000 calls waiting out their
    deadline in gRPC's queue, with this code and with the code before the round alike;
    700 a second were all answered.
    """
    speed = machine_speed.rate(0.5)
    return max(300, min(1000, round(1000 * speed / 200)))


def test_past_its_capacity_the_mesh_answers_every_call(mesh: Mesh) -> None:
    # Far more calls than two workers on this machine decide in full (a few hundred a
    # second): calls that waited out their budget in gRPC's queue are answered the
    # fallback at once, instead of queues growing until callers give up.
    rate = _past_capacity_rate()
    settings = BenchSettings(
        addresses={"decision": mesh.decision_address},
        targets=("decide",),
        pids=mesh.pids,
        rate=rate,
        duration_s=2.0,
        warmup_s=0.5,
        timeout_s=2.0,
        workload=Workload(customers=20),
    )
    decide = bench(settings, progress=lambda line: None)["results"]["decide"]
    assert decide["issued"] == 2 * rate
    assert decide["errors"] == {}
    assert decide["ok"] == 2 * rate
    assert decide["fallbacks"] > 0
    assert decide["degraded"]["fallback"] == decide["fallbacks"]
    # Bounded by how fast the workers answer fallbacks, not by the callers' 2 s deadline.
    # (On a slow day this machine answers fewer than 1,000 fallbacks a second, and the
    # calls queue for a few hundred milliseconds.)
    assert decide["latency_ms"]["p50"] < 1000
