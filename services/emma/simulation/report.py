"""The simulation report: the curve as a table, the summary, a JSON document and a PNG plot."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emma.cli.table import format_table
from emma.simulation.curve import Summary, Window

HEADERS = ("decisions", "policy", "realised", "oracle", "baseline", "random", "of oracle")


def table(windows: Sequence[Window]) -> str:
    rows = [
        (
            f"{w.start}-{w.end}",
            f"{w.policy:.3f}",
            f"{w.realised:.3f}",
            f"{w.oracle:.3f}",
            f"{w.baseline:.3f}",
            f"{w.random:.3f}",
            f"{w.policy / w.oracle:.0%}" if w.oracle else "-",
        )
        for w in windows
    ]
    return format_table(HEADERS, rows)


def summary_text(summary: Summary) -> str:
    tail = summary.tail
    return "\n".join(
        [
            f"last {tail.end - tail.start} of {summary.decisions} decisions: policy "
            f"{tail.policy:.3f} expected ({tail.realised:.3f} realised) = "
            f"{summary.of_oracle:.0%} of the oracle's {tail.oracle:.3f}; "
            f"{summary.over_baseline:.2f}x the baseline's {tail.baseline:.3f}, "
            f"{summary.over_random:.2f}x uniform random's {tail.random:.3f}",
            f"first {summary.first.end} decisions: policy {summary.first.policy:.3f} "
            f"({summary.first.policy / summary.first.oracle:.0%} of the oracle)"
            if summary.first.oracle
            else "",
            f"eligible sets agreed with the service's candidate count in "
            f"{summary.agreement:.1%} of decisions; {summary.fallbacks} fallbacks, "
            f"{summary.degraded} degraded"
            + (
                " ("
                + ", ".join(f"{k}: {v}" for k, v in sorted(summary.degraded_parts.items()))
                + ")"
                if summary.degraded_parts
                else ""
            ),
            f"{summary.decisions / summary.elapsed_s:.0f} decisions/s over "
            f"{summary.elapsed_s:.0f} s; Decide latency p50 {summary.latency_p50_ms:.1f} ms, "
            f"p99 {summary.latency_p99_ms:.1f} ms (client side)",
        ]
    )


def document(
    windows: Sequence[Window], summary: Summary, settings: dict[str, Any]
) -> dict[str, Any]:
    return {
        "settings": settings,
        "summary": {
            **dataclasses.asdict(summary),
            "of_oracle": summary.of_oracle,
            "over_baseline": summary.over_baseline,
            "over_random": summary.over_random,
        },
        "windows": [dataclasses.asdict(w) for w in windows],
    }


def plot(windows: Sequence[Window], path: Path, title: str) -> None:
    """A PNG of the learning curve against the oracle, the baseline and uniform random."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ends = [w.end for w in windows]
    figure, axes = plt.subplots(figsize=(9, 5))
    axes.plot(ends, [w.oracle for w in windows], "k--", label="oracle")
    axes.plot(ends, [w.policy for w in windows], "o-", color="tab:blue", label="Emma (expected)")
    axes.plot(
        ends,
        [w.realised for w in windows],
        ".",
        color="tab:blue",
        alpha=0.5,
        label="Emma (realised)",
    )
    axes.plot(
        ends, [w.baseline for w in windows], "s-", color="tab:orange", label="baseline (priority)"
    )
    axes.plot(ends, [w.random for w in windows], "^-", color="tab:gray", label="uniform random")
    axes.set_xlabel("decisions")
    axes.set_ylabel("average reward per decision (window)")
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
