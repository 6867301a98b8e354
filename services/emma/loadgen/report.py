"""The benchmark's report: a JSON document, a text table and a latency-over-time plot."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emma.loadgen.recorder import PERCENTILES, Recorder
from emma.loadgen.rounds import combine

VERSION = 1
RATIO_KEYS = (*PERCENTILES, "max")
# Issue #6: the goals on this 2-core machine (ms, decisions per second, ratio to floor).
GOAL_LOW_RATE = 200.0
GOAL_HIGH_RATE = 600.0


def timeline(recorder: Recorder, step_s: float = 1.0) -> list[dict[str, float]]:
    """Per `step_s` of due time: answers, p50, p99 and max latency in ms, and the percent
    of the machine's time stolen by its neighbours (where sampled)."""
    if not recorder.times:
        return []
    times = np.frombuffer(recorder.times, dtype=np.float64)
    times = times - times.min()  # from the first measured request, after the warm-up
    latencies = np.frombuffer(recorder.latencies_ms, dtype=np.float64)
    buckets = np.floor(times / step_s).astype(np.int64)
    points = []
    for bucket in np.unique(buckets):
        values = latencies[buckets == bucket]
        p50, p99 = np.percentile(values, [50, 99])
        point = {
            "t": round(float(bucket * step_s), 3),
            "count": int(values.size),
            "p50": round(float(p50), 3),
            "p99": round(float(p99), 3),
            "max": round(float(values.max()), 3),
        }
        if recorder.machine is not None and recorder.first_answered_due is not None:
            begins = recorder.first_answered_due + float(bucket * step_s)
            # The last second may end before a whole step: the run ended with its answers.
            ends = min(begins + step_s, max(recorder.last_done, begins))
            share = recorder.machine.share(begins, ends)
            if share is not None:
                point["steal_pct"] = share.steal_pct
        points.append(point)
    return points


def ratios(result: Mapping[str, Any], floor: Mapping[str, Any]) -> dict[str, float]:
    """Each latency percentile of `result` divided by the floor's (same run, same rate)."""
    out = {}
    for key in RATIO_KEYS:
        base = floor["latency_ms"][key]
        out[key] = round(result["latency_ms"][key] / base, 2) if base > 0 else 0.0
    return out


def goals(results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals that this run's rate and duration can speak to, met or not."""
    decide = results.get("decide")
    if decide is None:
        return []
    latency, rate = decide["latency_ms"], decide["rate"]
    checks = []
    if rate >= GOAL_LOW_RATE:
        checks.append(("p50 <= 3 ms at >= 200/s", latency["p50"] <= 3.0, latency["p50"]))
        checks.append(("p99 <= 10 ms at >= 200/s", latency["p99"] <= 10.0, latency["p99"]))
    if rate >= GOAL_HIGH_RATE:
        # A fallback answered for want of time (an overloaded replica sheds) is no decision.
        sustained = (
            decide["error_count"] == 0
            and decide["degraded"].get("fallback", 0) == 0
            and decide["achieved_rate"] >= 0.98 * rate
        )
        checks.append(("p99 <= 25 ms at >= 600/s", latency["p99"] <= 25.0, latency["p99"]))
        checks.append(("600/s sustained without errors", sustained, decide["achieved_rate"]))
    if "ratio_to_floor" in decide:
        ratio = decide["ratio_to_floor"]["p50"]
        checks.append(("p50 within 1.5x of the floor", 0 < ratio <= 1.5, ratio))
    return [{"goal": goal, "met": bool(met), "value": value} for goal, met, value in checks]


def round_results(
    recorders: Mapping[str, Recorder], rates: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """One round's result per target, with its ratios to the floor of the same round."""
    results: dict[str, dict[str, Any]] = {}
    for name, recorder in recorders.items():
        result = recorder.result(name, rates[name])
        result["timeline"] = timeline(recorder)
        results[name] = result
    floor = results.get("floor")
    if floor is not None and floor["ok"]:
        for name, result in results.items():
            if name != "floor":
                result["ratio_to_floor"] = ratios(result, floor)
    return results


def document(
    rounds: Sequence[Mapping[str, Recorder]],
    rates: Mapping[str, float],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON report: settings, one result per target (over every round), ratios to the
    floor, goals."""
    per_round = [round_results(recorders, rates) for recorders in rounds]
    results = per_round[0]
    if len(per_round) > 1:
        results = {
            name: combine(name, [r[name] for r in per_round], [rd[name] for rd in rounds])
            for name in per_round[0]
        }
    load = os.getloadavg()
    return {
        "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": dict(settings),
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in load]},
        "results": results,
        "goals": goals(results),
    }


# Percent of the machine stolen by other guests above which a target's figures are suspect.
NOISY_STEAL_PCT = 2.0


def noise_warnings(report: Mapping[str, Any]) -> list[str]:
    """A line for each target during which other guests took more than NOISY_STEAL_PCT of
    the machine, or some second of which they took more than five times that."""
    lines = []
    for name, result in report["results"].items():
        steal = result.get("machine", {}).get("steal_pct")
        worst = max((p.get("steal_pct", 0.0) for p in result["timeline"]), default=0.0)
        if steal is not None and (steal > NOISY_STEAL_PCT or worst > 5 * NOISY_STEAL_PCT):
            lines.append(
                f"{name}: {steal:g} % of the machine stolen by other guests (up to {worst:g} % "
                "in one second); its percentiles measure them too, run it again to compare"
            )
    return lines


def table(report: Mapping[str, Any]) -> str:
    """The results as a fixed-width text table, latencies in ms."""
    header = ["target", "rate/s", "achieved", "ok", "errors", "degraded"]
    header += [*RATIO_KEYS, "x floor p50", "x floor p99", "cpu ms/req", "gen ms/req", "steal %"]
    rows = [header]
    for name, r in report["results"].items():
        latency = r["latency_ms"]
        ratio = r.get("ratio_to_floor", {})
        rows.append(
            [
                name,
                f"{r['rate']:g}",
                f"{r['achieved_rate']:g}",
                str(r["ok"]),
                str(r["error_count"]),
                str(r["degraded_count"]),
                *(f"{latency[key]:.2f}" for key in RATIO_KEYS),
                f"{ratio['p50']:.2f}" if ratio else "",
                f"{ratio['p99']:.2f}" if ratio else "",
                # Every process under test together (services, or the chain's three).
                f"{sum(r['cpu_ms_per_request'].values()):.2f}" if r["cpu_ms_per_request"] else "",
                # The load generator's own, on the same cores.
                f"{generator:.2f}" if (generator := r.get("generator_cpu_ms_per_request")) else "",
                # The machine's time taken by other guests meanwhile (machine.py).
                f"{r['machine']['steal_pct']:.1f}" if r.get("machine") else "",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join([*lines, *_round_lines(report)])


def _round_lines(report: Mapping[str, Any]) -> list[str]:
    """Under a run of several rounds, each target's p50 (and ratio) round by round."""
    lines = []
    for name, result in report["results"].items():
        rounds = result.get("rounds")
        if not rounds:
            continue
        p50s = " / ".join(f"{r['latency_ms']['p50']:.2f}" for r in rounds)
        line = f"  {name} p50 by round: {p50s} ms"
        if all("ratio_to_floor" in r for r in rounds):
            line += "; x floor p50: " + " / ".join(
                f"{r['ratio_to_floor']['p50']:.2f}" for r in rounds
            )
        lines.append(line)
    return lines


def plot(report: Mapping[str, Any], path: Path, title: str = "") -> None:
    """Per-second p50 (solid) and p99 (dashed) latency of every target over the run, as PNG;
    below it, where sampled, the percent of the machine's time its neighbours took."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    with_steal = any("steal_pct" in p for r in results.values() for p in r["timeline"])
    if with_steal:
        figure, (axes, steal) = plt.subplots(
            2, 1, sharex=True, figsize=(8, 4.8), dpi=100, height_ratios=(3, 1)
        )
    else:
        figure, axes = plt.subplots(figsize=(8, 3.6), dpi=100)
    for index, (name, result) in enumerate(results.items()):
        points: Sequence[Mapping[str, float]] = result["timeline"]
        if not points:
            continue
        color = f"C{index}"
        t = [p["t"] for p in points]
        axes.plot(t, [p["p50"] for p in points], color=color, label=f"{name} p50")
        axes.plot(t, [p["p99"] for p in points], color=color, linestyle="--", label=f"{name} p99")
        if with_steal:
            stolen = [p for p in points if "steal_pct" in p]
            steal.plot([p["t"] for p in stolen], [p["steal_pct"] for p in stolen], color=color)
    axes.set_yscale("log")
    # Plain numbers (1, 2, 5, 10, 20 ms) on the log axis rather than powers of ten.
    plain = matplotlib.ticker.FuncFormatter(
        lambda value, _: f"{value:g}" if f"{value:g}".lstrip("0.")[:1] in ("1", "2", "5") else ""
    )
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_formatter(plain)
    if with_steal:
        steal.set_ylabel("steal %")
        steal.set_ylim(bottom=0)
        steal.grid(True, alpha=0.3)
        steal.set_xlabel("seconds into the measured run")
    else:
        axes.set_xlabel("seconds into the measured run")
    axes.set_ylabel("latency from due time (ms)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", ncol=2)
    axes.set_title(title or "emma bench", fontsize="medium")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
