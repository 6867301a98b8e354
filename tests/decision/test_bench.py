"""The in-process Decide benchmark runs end to end on the benchmark mesh and reports its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import decision as bench


@pytest.mark.timeout(240)
def test_the_benchmark_prints_cpu_per_decision_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--decisions", "30", "--warmup", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    medians = result["cpu_ms_per_call_median"]
    assert set(medians) == {"services", "in-process", "logic", "redis_ping"}
    assert all(len(values) == result["rounds"] for values in result["cpu_ms_per_call"].values())
    # Deciding does more than a round trip to Redis, and calling profile adds to it.
    assert medians["logic"] > medians["redis_ping"] > 0
    # The benchmark catalog offers well over the 50 actions a decision scores.
    assert result["mean_candidates"] > 40
    # Degraded decisions are counted (a loaded machine may miss a budget), never hidden.
    assert isinstance(result["degraded"], dict)


@pytest.mark.timeout(240)
def test_the_benchmark_runs_only_the_modes_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--decisions", "20", "--warmup", "5", "--json", "--mode", "in-process"]
    assert bench.main([*argv, "--rounds", "1", "--budget-ms", "5000"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rounds"] == 1
    assert set(result["cpu_ms_per_call"]) == {"in-process"}
    assert len(result["cpu_ms_per_call"]["in-process"]) == 1
    # A budget of seconds leaves nothing to time out on a quiet machine.
    assert result["degraded"] == {}


@pytest.mark.timeout(240)
def test_the_benchmark_can_run_with_the_services_tracing_and_metrics() -> None:
    # A process of its own: the SDK's providers are installed once per process. Every
    # span sampled and printed, so each decision's spans show under a server-like parent.
    environ = {**os.environ, "OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_EXPORTER": "console"}
    argv = ["--decisions", "5", "--warmup", "1", "--mode", "in-process", "--rounds", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "bench.decision", *argv, "--budget-ms", "5000", "--telemetry"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=Path(bench.__file__).resolve().parents[1],
        timeout=200,
        check=True,
    )
    assert "in-process" in result.stdout
    assert '"name": "emma.decision.eligibility"' in result.stdout
    assert '"name": "/emma.decision.v1.DecisionService/Decide"' in result.stdout
