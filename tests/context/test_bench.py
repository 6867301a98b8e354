"""The context benchmark runs end to end on a small registry and reports what it promises."""

from __future__ import annotations

import json

import pytest

from bench import context as bench
from emma.context.stores import parse_stores


def test_synthetic_stores_are_a_valid_registry() -> None:
    registry = parse_stores({"stores": bench.synthetic_stores(500, seed=3)}, "synthetic")
    assert len(registry) == 500
    assert {store.country for store in registry} >= {"DE", "AT", "AU", "US"}
    assert any(hours.close_minute > 1440 for s in registry for hours in s.opening_hours)


@pytest.mark.timeout(180)
def test_the_benchmark_prints_its_figures_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--stores", "300", "--calls", "40", "--grpc-calls", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stores"] == 300
    assert result["nearest_mismatches"] == 0
    assert result["grpc"][0]["name"] == "ping-pong (echo)"
    kinds = [row["name"] for row in result["in_process"]][1:]
    assert kinds == [row["name"] for row in result["grpc"]][1:]
    assert all(row["calls"] == 40 and row["p50_us"] > 0 for row in result["in_process"])
    reference = result["in_process_reference"]
    assert reference["calls"] == 40
    assert reference["p50_us"] <= reference["p99_us"] <= reference["p99_block_max_us"]
    assert result["reference_p99_to_p50"] >= 1.0
    assert result["in_process_preemptions"] >= 0
    assert set(result["grpc_p50_ratio_to_ping_pong"]) == set(kinds)
    assert set(result["goals"]) == {
        "in_process_p99_us",
        "in_process_met",
        "grpc_p50_ratio",
        "grpc_met",
    }
