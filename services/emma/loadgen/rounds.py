"""Several rounds of the same targets, alternating, as one result per target.

On a shared machine the speed the processes get drifts by tens of percent within a
minute, and a target measured a minute after the floor is compared with another
machine. Rounds alternate the targets (floor, decide, floor, decide, ...) so that each
round's ratio to the floor compares neighbours in time; the result reports the median of
those ratios, and latency percentiles over every round's requests together.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from emma.loadgen.recorder import Recorder, new_histogram, summary_ms

_SUMMED = ("issued", "ok", "error_count", "degraded_count", "fallbacks", "warmup_requests")
# Each summary of the result, and the recorder's histogram it comes from.
_HISTOGRAMS = {
    "latency_ms": "latency",
    "service_time_ms": "service_time",
    "send_lag_ms": "send_lag",
}


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def _summed_counts(results: Sequence[Mapping[str, Any]], key: str) -> dict[str, int]:
    total: collections.Counter[str] = collections.Counter()
    for result in results:
        total.update(result[key])
    return dict(sorted(total.items()))


def _medians(mappings: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per key, the median over the mappings that have it."""
    keys = dict.fromkeys(key for mapping in mappings for key in mapping)
    return {key: _median([m[key] for m in mappings if key in m]) for key in keys}


def _timeline(results: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """The rounds' per-second points one after another, as if measured in one stretch."""
    points: list[dict[str, float]] = []
    offset = 0.0
    for result in results:
        for point in result["timeline"]:
            points.append({**point, "t": round(point["t"] + offset, 3)})
        if points:
            offset = points[-1]["t"] + 1.0
    return points


def combine(
    name: str, results: Sequence[Mapping[str, Any]], recorders: Sequence[Recorder]
) -> dict[str, Any]:
    """One target's result over its rounds: counts summed, latency percentiles over all of
    its requests, rates, CPU and the machine's share as medians of the rounds, and each
    round's own figures under `rounds`."""
    combined: dict[str, Any] = {"target": name, "rate": results[0]["rate"]}
    for key in _SUMMED:
        combined[key] = sum(result[key] for result in results)
    combined["errors"] = _summed_counts(results, "errors")
    combined["degraded"] = _summed_counts(results, "degraded")
    candidates = sum(r["mean_candidates"] * r["ok"] for r in results)
    combined["mean_candidates"] = round(candidates / combined["ok"], 2) if combined["ok"] else 0.0
    for key in ("issued_rate", "achieved_rate"):
        combined[key] = _median([result[key] for result in results])
    for key, attribute in _HISTOGRAMS.items():
        merged = new_histogram()
        for recorder in recorders:
            merged.add(getattr(recorder, attribute))
        combined[key] = summary_ms(merged)
    combined["cpu_ms_per_request"] = _medians([r["cpu_ms_per_request"] for r in results])
    workers = [r["worker_cpu_ms_per_request"] for r in results]
    combined["worker_cpu_ms_per_request"] = {
        process: [_median(shares) for shares in zip(*(w[process] for w in workers), strict=False)]
        for process in dict.fromkeys(p for w in workers for p in w)
        if all(process in w for w in workers)
    }
    generator = [r["generator_cpu_ms_per_request"] for r in results]
    combined["generator_cpu_ms_per_request"] = _median(generator) if None not in generator else None
    combined["machine"] = _medians([r["machine"] for r in results if r["machine"]])
    combined["timeline"] = _timeline(results)
    combined["rounds"] = [
        {
            "latency_ms": {k: result["latency_ms"][k] for k in ("p50", "p99")},
            "cpu_ms_per_request": round(sum(result["cpu_ms_per_request"].values()), 3),
            **({"steal_pct": result["machine"]["steal_pct"]} if result["machine"] else {}),
            **({"ratio_to_floor": result["ratio_to_floor"]} if "ratio_to_floor" in result else {}),
        }
        for result in results
    ]
    ratios = [result["ratio_to_floor"] for result in results if "ratio_to_floor" in result]
    if ratios:
        # Each round against its own floor, the median of them: the steadiest comparison.
        combined["ratio_to_floor"] = {key: round(v, 2) for key, v in _medians(ratios).items()}
    return combined
