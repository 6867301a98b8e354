"""The evaluation report: a table for the terminal, a JSON document and a plot."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emma.cli.table import format_table
from emma.evaluation.estimators import Estimate, PolicyEstimate
from emma.evaluation.join import JoinStats

HEADERS = ("policy", "IPS", "SNIPS", "DR", "eff. events")
ESTIMATORS = ("ips", "snips", "dr")


def _cell(estimate: Estimate) -> str:
    return f"{estimate.value:.4f} [{estimate.low:.4f}, {estimate.high:.4f}]"


def table(estimates: Sequence[PolicyEstimate]) -> str:
    rows = [
        (e.policy, _cell(e.ips), _cell(e.snips), _cell(e.dr), f"{e.effective_events:.0f}")
        for e in estimates
    ]
    return format_table(HEADERS, rows)


def stats_line(stats: JoinStats) -> str:
    return (
        f"{stats.evaluated} decisions evaluated of {stats.decisions} logged "
        f"({stats.rewarded} with a reward; left out: {stats.not_activated} deferred and never "
        f"activated, {stats.single_action} single-action (fallback), "
        f"{stats.duplicate_decisions} duplicates); outcomes ignored: {stats.late_outcomes} "
        f"after the window, {stats.unknown_outcomes} for unknown decisions, "
        f"{stats.duplicate_rewards} repeated rewards (same idempotency key)"
    )


def document(
    estimates: Sequence[PolicyEstimate], stats: JoinStats, settings: dict[str, Any]
) -> dict[str, Any]:
    """Everything the table shows, for machines."""
    return {
        "settings": settings,
        "join": dataclasses.asdict(stats),
        "policies": [
            {
                "policy": e.policy,
                "events": e.events,
                "effective_events": e.effective_events,
                "mean_weight": e.mean_weight,
                **{name: getattr(e, name).as_dict() for name in ESTIMATORS},
            }
            for e in estimates
        ],
    }


def plot(estimates: Sequence[PolicyEstimate], path: Path, title: str) -> None:
    """A PNG: each policy's IPS, SNIPS and DR estimate with its confidence interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 1.2 + 0.75 * len(estimates)))
    offsets = {"ips": -0.22, "snips": 0.0, "dr": 0.22}
    for name, offset in offsets.items():
        values = [getattr(e, name) for e in estimates]
        rows = [i + offset for i in range(len(estimates))]
        axes.errorbar(
            [v.value for v in values],
            rows,
            xerr=[[v.value - v.low for v in values], [v.high - v.value for v in values]],
            fmt="o",
            capsize=3,
            label=name.upper(),
        )
    axes.set_yticks(range(len(estimates)), [e.policy for e in estimates])
    axes.invert_yaxis()
    axes.set_xlabel("estimated average reward per decision")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
