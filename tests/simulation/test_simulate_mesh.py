"""A short simulation against a real private mesh (Redis, services, learner), as `emma
simulate` starts it: the policy must learn far beyond uniform random, and the offline
evaluation of the resulting log must agree with the simulator's hidden truth."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from emma.cli.main import main
from emma.cli.mesh import Mesh, MeshPorts
from emma.decision.catalog import load_catalog
from emma.evaluation.join import JoinedEvent
from emma.evaluation.policies import BaselinePolicy, Example
from emma.evaluation.sources import read_redis
from emma.simulation.driver import DriveSettings
from emma.simulation.population import PopulationSettings
from emma.simulation.run import CATALOG, MESH_ENV, SimulationSettings, simulate

DECISIONS = 2500


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    env = {"EMMA_CATALOG": str(CATALOG), **MESH_ENV}
    run_dir = tmp_path_factory.mktemp("sim-run")
    with Mesh(ports=MeshPorts.free(), env=env, run_dir=run_dir) as mesh:
        yield mesh


@pytest.mark.timeout(180)
async def test_a_short_run_learns_far_beyond_uniform_random(mesh: Mesh, tmp_path: Path) -> None:
    settings = SimulationSettings(
        population=PopulationSettings(customers=200),
        drive=DriveSettings(decisions=DECISIONS, concurrency=16, seed=3, budget_ms=3000),
        prefix="learn",
        window=500,
        tail=1000,
    )
    result = await simulate(mesh.decision_address, mesh.profile_address, settings)
    summary, tail, first = result.summary, result.summary.tail, result.windows[0]

    assert summary.decisions == DECISIONS
    # A loaded test machine may make a dependency miss even a generous budget now and then.
    assert summary.fallbacks == 0
    assert summary.degraded < 0.01 * DECISIONS, summary.degraded_parts
    # The simulator's eligible set is the service's: its oracle chooses among the same actions.
    whole = [s for s in result.steps if not s.degraded]
    assert all(s.candidates == s.eligible for s in whole)
    # Learned: far above uniform random and the baseline, and above where it started.
    assert tail.policy > 1.3 * tail.random, summary
    assert tail.policy - tail.random > 0.05, summary
    assert tail.policy > tail.baseline + 0.03, summary
    assert tail.policy > first.policy + 0.03, result.windows
    # The rewards really were drawn from the hidden probabilities.
    spread = math.sqrt(tail.policy * (1 - tail.policy) / (tail.end - tail.start))
    assert abs(tail.realised - tail.policy) < 4 * spread

    # Offline evaluation of the mesh's own log recovers the simulator's numbers.
    report = tmp_path / "evaluation.json"
    assert mesh.redis_url is not None
    code = main(
        ["evaluate", "--redis-url", mesh.redis_url, "--catalog", str(CATALOG),
         "--reward-model", "means", "--json", str(report)]
    )  # fmt: skip
    assert code == 0
    estimates = {p["policy"]: p for p in json.loads(report.read_text())["policies"]}
    steps = result.steps
    live = estimates["live"]
    # Every decision was logged and joined, unless its log write was degraded.
    logged = [s for s in steps if "decision_log" not in s.degraded]
    assert live["events"] == len(logged)
    assert live["ips"]["value"] == pytest.approx(sum(s.reward for s in logged) / len(logged))
    uniform_truth = sum(s.random for s in steps) / DECISIONS
    # A nearly greedy log gives uniform random heavy-tailed weights (1 / (K p) for actions
    # explored at the floor), so a single run's 95% interval misses more often than 5%:
    # allow twice its half-width (about four standard errors).
    uniform = estimates["uniform"]["dr"]
    assert abs(uniform["value"] - uniform_truth) < uniform["high"] - uniform["low"]

    # The evaluator's baseline (catalog priorities) is the one the service logs it would serve.
    decisions, _ = read_redis(mesh.redis_url, "emma:decisions", "emma:rewards")
    baseline = BaselinePolicy({o.offer_id: o.priority for o in load_catalog(CATALOG).offers})
    for event in decisions:
        chosen = baseline.choose(Example(JoinedEvent(event, 0.0, False)))
        assert chosen == event.raw["_emma"]["baselineIndex"], event.event_id


def test_the_command_prints_plots_and_writes_the_curve(
    mesh: Mesh, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot, report, steps = tmp_path / "curve.png", tmp_path / "curve.json", tmp_path / "steps.jsonl"
    code = main(
        ["simulate", "--decision-addr", mesh.decision_address,
         "--profile-addr", mesh.profile_address, "--decisions", "300", "--customers", "40",
         "--window", "100", "--tail", "100", "--prefix", "cli", "--quiet",
         "--plot", str(plot), "--json", str(report), "--steps", str(steps)]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "decisions  policy  realised  oracle  baseline  random  of oracle" in out
    assert "of the oracle" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    document = json.loads(report.read_text())
    assert [w["end"] for w in document["windows"]] == [100, 200, 300]
    assert document["summary"]["decisions"] == 300
    lines = [json.loads(line) for line in steps.read_text().splitlines()]
    assert len(lines) == 300 and all(0 <= s["chance"] <= s["oracle"] + 1e-12 for s in lines)


def test_bad_arguments_stop_before_any_mesh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--decision-addr", "127.0.0.1:1"]) == 2
    assert "both --decision-addr and --profile-addr" in capsys.readouterr().err
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "offers:\n"
        "  - {id: a, title: A, category: x, channels: [in_app], seasons: [summer]}\n"
        "  - {id: f, title: F, category: y, channels: [in_app], fallback: true}\n"
    )
    assert main(["simulate", "--catalog", str(catalog)]) == 2
    assert "seasons not simulated" in capsys.readouterr().err
