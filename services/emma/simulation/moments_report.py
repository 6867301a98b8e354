"""The moments part of the simulation report: firings per kind, suppressions, deliveries,
redemptions, and what a moment earns against a decision someone asked for."""

from __future__ import annotations

import collections
import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

from emma.cli.table import format_table
from emma.simulation.driver import Step
from emma.simulation.moments import FIRED, MomentsResult

HEADERS = ("kind", "fired", "suppressed", "delivered", "redeemed", "per delivery")
# Why a firing published nothing (the engine's outcomes), in words.
SUPPRESSED = {
    "dedup": "dedup window",
    "customer_limit": "per-customer firing limit",
    "cooldown": "negative-sentiment cool-down",
    "no_offer": "no offer: consent, caps or nothing eligible",
    "expired": "quiet hours moved the send past expiry",
    "stale": "stale (event or timer too old)",
    "unknown_customer": "unknown customer",
    "unknown_rule": "unknown rule",
}


@dataclasses.dataclass(frozen=True)
class MomentsSummary:
    first: str
    days: int
    events: dict[str, int]
    fired: dict[str, int]  # rule kind -> actions published
    suppressed: dict[str, int]  # reason -> firings that published nothing
    suppressed_by_kind: dict[str, int]
    delivered: int
    delivered_by_kind: dict[str, int]
    redeemed: int
    redeemed_by_kind: dict[str, int]
    rewarded: int  # redemptions the engine rewarded (the decision learns from them)
    timers_scheduled: int
    timers_cancelled: int
    retries: int
    # Reward per delivered moment and per decision asked for (realised), and the moments'
    # share of every reward the simulation earned.
    per_moment: float
    expected_per_moment: float
    per_asked_for: float
    reward_share: float


def summarise_moments(result: MomentsResult, steps: Sequence[Step]) -> MomentsSummary:
    fired: collections.Counter[str] = collections.Counter()
    suppressed: collections.Counter[str] = collections.Counter()
    suppressed_by_kind: collections.Counter[str] = collections.Counter()
    for kind, outcomes in result.outcomes.items():
        for outcome, count in outcomes.items():
            if outcome == FIRED:
                fired[kind] += count
            else:
                suppressed[outcome.removeprefix("skipped.")] += count
                suppressed_by_kind[kind] += count
    # Stale events and timers never reach a firing: the engine counts them on its own.
    if result.engine.get("skipped.stale"):
        suppressed["stale"] += result.engine["skipped.stale"]
    deliveries = result.deliveries
    redeemed = sum(d.redeemed for d in deliveries)
    asked_for = sum(s.reward for s in steps)
    return MomentsSummary(
        first=result.first.isoformat(),
        days=result.days,
        events=dict(sorted(result.events.items())),
        fired=dict(sorted(fired.items())),
        suppressed=dict(sorted(suppressed.items())),
        suppressed_by_kind=dict(sorted(suppressed_by_kind.items())),
        delivered=len(deliveries),
        delivered_by_kind=dict(collections.Counter(d.kind for d in deliveries)),
        redeemed=redeemed,
        redeemed_by_kind=dict(collections.Counter(d.kind for d in deliveries if d.redeemed)),
        rewarded=result.rewarded,
        timers_scheduled=result.engine.get("scheduled", 0),
        timers_cancelled=result.engine.get("cancelled", 0),
        retries=result.engine.get("retry", 0),
        per_moment=redeemed / len(deliveries) if deliveries else 0.0,
        expected_per_moment=statistics.fmean(d.chance for d in deliveries) if deliveries else 0.0,
        per_asked_for=asked_for / len(steps) if steps else 0.0,
        reward_share=redeemed / (redeemed + asked_for) if redeemed + asked_for else 0.0,
    )


def moments_table(summary: MomentsSummary) -> str:
    kinds = sorted(set(summary.fired) | set(summary.suppressed_by_kind))
    rows = []
    for kind in kinds:
        delivered = summary.delivered_by_kind.get(kind, 0)
        redeemed = summary.redeemed_by_kind.get(kind, 0)
        rows.append(
            (
                kind,
                str(summary.fired.get(kind, 0)),
                str(summary.suppressed_by_kind.get(kind, 0)),
                str(delivered),
                str(redeemed),
                f"{redeemed / delivered:.3f}" if delivered else "-",
            )
        )
    return format_table(HEADERS, rows)


def moments_text(summary: MomentsSummary) -> str:
    events = ", ".join(f"{name} {count}" for name, count in summary.events.items())
    why = ", ".join(
        f"{SUPPRESSED.get(reason, reason)}: {count}" for reason, count in summary.suppressed.items()
    )
    ratio = f" = {summary.per_moment / summary.per_asked_for:.1f}x" if summary.per_asked_for else ""
    return "\n".join(
        [
            f"moments over {summary.days} days from {summary.first}: events {events}",
            f"suppressed: {why or 'none'}; timers scheduled {summary.timers_scheduled}, "
            f"cancelled {summary.timers_cancelled}"
            + (f"; {summary.retries} retries" if summary.retries else ""),
            f"{summary.delivered} delivered, {summary.redeemed} redeemed "
            f"({summary.rewarded} rewarded through the engine): {summary.per_moment:.3f} per "
            f"moment ({summary.expected_per_moment:.3f} expected) vs {summary.per_asked_for:.3f} "
            f"per asked-for decision{ratio}; moments earned {summary.reward_share:.1%} of all "
            "rewards",
        ]
    )


def moments_document(summary: MomentsSummary, result: MomentsResult) -> dict[str, Any]:
    return {
        **dataclasses.asdict(summary),
        "outcomes": result.outcomes,
        "engine": result.engine,
    }
