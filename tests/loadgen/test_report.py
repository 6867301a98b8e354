"""The JSON report's shape, ratios to the floor, goals, the table and the PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emma.loadgen.recorder import Outcome, Recorder
from emma.loadgen.report import document, plot, table
from emma.loadgen.schedule import Sent


def _recorder(
    latency_ms: float, count: int = 400, outcome: object = None, rate: float = 200.0
) -> Recorder:
    recorder = Recorder(start=0.0)
    for index in range(count):
        due = index / rate
        recorder.record(Sent(index, due, due, due + latency_ms / 1000, outcome))
    return recorder


def _report() -> dict[str, object]:
    recorders = {
        "floor": _recorder(1.0),
        "decide": _recorder(2.0, outcome=Outcome(("context",), False, 50)),
    }
    return document([recorders], {"floor": 200.0, "decide": 200.0}, {"rate": 200.0})


def test_report_shape_and_ratio_to_the_floor() -> None:
    report = json.loads(json.dumps(_report()))  # JSON-serialisable as a whole
    assert set(report) == {"version", "created_at", "settings", "machine", "results", "goals"}
    assert list(report["results"]) == ["floor", "decide"]
    decide = report["results"]["decide"]
    for key in ("issued", "ok", "errors", "error_count", "degraded", "degraded_count",
                "fallbacks", "issued_rate", "achieved_rate", "latency_ms", "service_time_ms",
                "send_lag_ms", "timeline", "mean_candidates"):  # fmt: skip
        assert key in decide
    assert set(decide["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}
    assert decide["degraded"] == {"context": 400}
    assert decide["mean_candidates"] == 50
    assert decide["ratio_to_floor"]["p50"] == pytest.approx(2.0, rel=0.01)
    assert "ratio_to_floor" not in report["results"]["floor"]
    # Two seconds of requests, one point per second.
    assert [point["count"] for point in decide["timeline"]] == [200, 200]
    assert decide["timeline"][0]["p99"] == pytest.approx(2.0, rel=0.01)


def test_goals_follow_the_rate_and_the_floor() -> None:
    goals = {goal["goal"]: goal for goal in _report()["goals"]}  # type: ignore[attr-defined]
    assert goals["p50 <= 3 ms at >= 200/s"]["met"] is True
    assert goals["p99 <= 10 ms at >= 200/s"]["met"] is True
    assert goals["p50 within 1.5x of the floor"]["met"] is False  # 2x
    assert not any("600/s" in name for name in goals)  # this run cannot speak to it


def test_table_and_plot(tmp_path: Path) -> None:
    report = _report()
    text = table(report)
    assert text.splitlines()[0].split()[:2] == ["target", "rate/s"]
    assert any(line.startswith("decide") and "2.00" in line for line in text.splitlines())
    path = tmp_path / "latency.png"
    plot(report, path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rounds_compare_each_target_with_the_floor_of_its_own_round() -> None:
    # The machine slowed in round 2 (the floor too); decide was slow alone in round 3.
    floors, decides = (1.0, 2.0, 1.0), (2.0, 4.0, 3.0)
    rounds = []
    for number, (floor_ms, decide_ms) in enumerate(zip(floors, decides, strict=True)):
        decide = _recorder(decide_ms)
        decide.cpu_ms = {"decision": 4.0 + number}
        decide.generator_cpu_ms = 1.0 + 2 * number
        rounds.append({"floor": _recorder(floor_ms), "decide": decide})
    report = json.loads(
        json.dumps(document(rounds, {"floor": 200.0, "decide": 200.0}, {"rate": 200.0}))
    )
    decide = report["results"]["decide"]
    assert (decide["issued"], decide["ok"], decide["error_count"]) == (1200, 1200, 0)
    # Percentiles over every request; the ratio as the median of the rounds' ratios (2, 2,
    # 3), not the ratio of the merged percentiles (3 / 1).
    assert decide["latency_ms"]["p50"] == pytest.approx(3.0, rel=0.01)
    assert [r["ratio_to_floor"]["p50"] for r in decide["rounds"]] == pytest.approx(
        [2, 2, 3], rel=0.01
    )
    assert decide["ratio_to_floor"]["p50"] == pytest.approx(2.0, rel=0.01)
    assert decide["cpu_ms_per_request"] == {"decision": 5.0}
    # The generator's own CPU, the median of its rounds; none known for the floor.
    assert decide["generator_cpu_ms_per_request"] == 3.0
    assert report["results"]["floor"]["generator_cpu_ms_per_request"] is None
    header = table(report).splitlines()[0]
    assert "cpu ms/req  gen ms/req" in header
    # The rounds' seconds one after another: two per round.
    assert [point["t"] for point in decide["timeline"]] == [0, 1, 2, 3, 4, 5]
    goals = {goal["goal"]: goal["value"] for goal in report["goals"]}
    assert goals["p50 within 1.5x of the floor"] == pytest.approx(2.0, rel=0.01)
    assert "decide p50 by round: 2.00 / 4.00 / 3.00 ms; x floor p50: 2.00 / 2.00 / 3.00" in table(
        report
    )


def test_shed_answers_do_not_count_as_sustained_decisions() -> None:
    def sustained(outcome: Outcome | None) -> bool:
        recorders = {"decide": _recorder(2.0, count=1200, outcome=outcome, rate=600.0)}
        report = document([recorders], {"decide": 600.0}, {"rate": 600.0})
        goals = {goal["goal"]: goal["met"] for goal in report["goals"]}
        return bool(goals["600/s sustained without errors"])

    assert sustained(None)
    # The same rate, answered with the fallback by an overloaded replica.
    assert not sustained(Outcome(("fallback",), True, 0))
