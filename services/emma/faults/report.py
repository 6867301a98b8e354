"""The figures of a fault run: calls, errors, degraded answers, latency during faults, losses."""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterable, Sequence
from typing import Any

from emma.faults.audit import Audit
from emma.faults.load import ACTIVATE, DECIDE, REWARD, Call
from emma.faults.scenario import KILLED_REPLICA, Window
from emma.loadgen.machine import CpuSampler
from emma.loadgen.recorder import new_histogram, summary_ms


def _summary(values_ms: Iterable[float]) -> dict[str, float]:
    """p50, p90, p99, p99.9, max and mean of durations in milliseconds."""
    histogram = new_histogram()
    for value in values_ms:
        histogram.record_value(max(1, round(value * 1000)))
    return summary_ms(histogram)


def _percentiles(calls: Sequence[Call]) -> dict[str, float]:
    return _summary(call.latency_ms for call in calls)


def _send_lag(calls: Sequence[Call]) -> dict[str, float]:
    return _summary(call.send_lag_ms for call in calls)


def _server_percentiles(calls: Sequence[Call]) -> dict[str, float]:
    """Percentiles of the decision service's own time, over the calls whose span arrived."""
    timed = [c.server_ms for c in calls if c.server_ms is not None]
    return {**_summary(timed), "calls": len(timed)}


def _covered(call: Call, windows: Sequence[Window]) -> bool:
    return any(window.covers(call.due) for window in windows)


def in_flight_at_kill(call: Call, windows: Sequence[Window]) -> bool:
    """Sent before the decision replica was killed and not answered by then."""
    return any(
        window.name == f"kill {KILLED_REPLICA}" and call.sent < window.injected < call.done
        for window in windows
    )


@dataclasses.dataclass(frozen=True)
class FaultFigures:
    """One fault: how long until it served again, and what callers saw meanwhile."""

    name: str
    recovery_s: float
    decides: int
    errors: int
    # Answered decisions of this window missing from the decision log.
    lost: int
    degraded: dict[str, int]
    p99_ms: float
    max_ms: float
    # The decision service's own p99 (server spans); None when no span arrived.
    server_p99_ms: float | None = None
    # Percent of the machine's time other guests took meanwhile; None where not sampled.
    steal_pct: float | None = None


@dataclasses.dataclass(frozen=True)
class Report:
    rate: float
    budget_ms: float
    duration_s: float
    calls: dict[str, int]
    errors: dict[str, dict[str, int]]
    errors_in_flight_at_kill: int
    decides_in_flight_at_kill: int
    degraded: dict[str, int]
    degraded_during_faults: dict[str, int]
    latency_ms: dict[str, dict[str, float]]
    # The decision service's own time per Decide (its server span): "calm", "during faults".
    server_ms: dict[str, dict[str, float]]
    # How late the load generator sent its Decide calls: a latency with a send lag as
    # large measures the generator's own backlog (it shares the machine), not the mesh.
    send_lag_ms: dict[str, float]
    faults: list[FaultFigures]
    audit: Audit
    # The machine's 1-minute load average at the end: latency means little when it is
    # far above the core count (other work competing with the mesh).
    load_average: float = 0.0
    cores: int = 0
    # Percent of the machine's time stolen by other guests and idle over the run
    # (emma.loadgen.machine); empty where not sampled.
    machine: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def errors_total(self) -> int:
        return sum(sum(codes.values()) for codes in self.errors.values())

    @property
    def p99_during_faults_ms(self) -> float:
        """Decide's own p99 during faults: what the budget bounds (the caller's latency adds
        its own queueing and the network)."""
        return self.server_ms["during faults"]["p99"]

    def goals(self) -> dict[str, bool]:
        """Each goal of the suite, met or not."""
        audit = self.audit
        return {
            "no errors but the killed replica's in-flight calls": self.errors_total
            == self.errors_in_flight_at_kill,
            "Decide's own p99 during faults <= budget + 1 ms": self.server_ms["during faults"][
                "calls"
            ]
            > 0
            and self.p99_during_faults_ms <= self.budget_ms + 1,
            "no answered decision missing from the log": audit.decisions_lost == 0,
            "no acknowledged reward missing from the stream": audit.rewards_lost == 0,
            "no acknowledged activation missing from the stream": audit.activations_lost == 0,
            "every rewarded decision learned once with its reward": audit.caught_up
            and audit.rewarded_learned == audit.rewarded_expected,
            "every learnable decision learned exactly once": audit.caught_up
            and audit.learned == audit.learnable_logged
            and audit.model_updates == audit.learnable_logged,
        }

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["audit"] = self.audit.as_dict()
        data["errors_total"] = self.errors_total
        data["goals"] = self.goals()
        return data


def build(
    calls: Sequence[Call],
    windows: Sequence[Window],
    audit: Audit,
    rate: float,
    budget_ms: float,
    duration_s: float,
    warmup_until: float = 0.0,
    machine: CpuSampler | None = None,
) -> Report:
    """The figures of a run; calls due before `warmup_until` (cold connections and caches)
    count for errors and losses but not for latency and degraded answers."""
    decides = [c for c in calls if c.kind == DECIDE]
    answered = [c for c in decides if not c.error and c.due >= warmup_until]
    during = [c for c in answered if _covered(c, windows)]
    calm = [c for c in answered if not _covered(c, windows)]
    errors: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for call in calls:
        if call.error:
            errors[call.kind][call.error] += 1
    degraded: collections.Counter[str] = collections.Counter()
    degraded_during: collections.Counter[str] = collections.Counter()
    for call in answered:
        degraded.update(call.degraded)
        if _covered(call, windows):
            degraded_during.update(call.degraded)
    in_flight = [c for c in decides if in_flight_at_kill(c, windows)]
    figures = []
    for window in windows:
        inside = [c for c in decides if window.covers(c.due)]
        ok = [c for c in inside if not c.error]
        shares: collections.Counter[str] = collections.Counter()
        for call in ok:
            shares.update(call.degraded)
        summary = _percentiles(ok)
        server = _server_percentiles(ok)
        figures.append(
            FaultFigures(
                window.name,
                round(window.recovery_s, 2),
                len(inside),
                len(inside) - len(ok),
                sum(c.event_id in audit.lost_event_ids for c in ok),
                dict(shares),
                summary["p99"],
                summary["max"],
                server["p99"] if server["calls"] else None,
                _steal(machine, window.injected, window.settled),
            )
        )
    return Report(
        rate=rate,
        budget_ms=budget_ms,
        duration_s=round(duration_s, 1),
        calls={kind: sum(c.kind == kind for c in calls) for kind in (DECIDE, ACTIVATE, REWARD)},
        errors={kind: dict(codes) for kind, codes in errors.items()},
        errors_in_flight_at_kill=sum(bool(c.error) for c in in_flight),
        decides_in_flight_at_kill=len(in_flight),
        degraded=dict(degraded),
        degraded_during_faults=dict(degraded_during),
        latency_ms={
            "all": _percentiles(answered),
            "calm": _percentiles(calm),
            "during faults": _percentiles(during),
            "during faults, without calls in flight at the kill": _percentiles(
                [c for c in during if not in_flight_at_kill(c, windows)]
            ),
        },
        server_ms={"calm": _server_percentiles(calm), "during faults": _server_percentiles(during)},
        send_lag_ms=_send_lag([c for c in decides if c.due >= warmup_until]),
        faults=figures,
        audit=audit,
        load_average=round(os.getloadavg()[0], 2),
        cores=os.cpu_count() or 0,
        machine=_whole_run(machine, calls),
    )


def _steal(machine: CpuSampler | None, start: float, end: float) -> float | None:
    share = machine.share(start, end) if machine is not None else None
    return share.steal_pct if share is not None else None


def _whole_run(machine: CpuSampler | None, calls: Sequence[Call]) -> dict[str, float]:
    """Steal and idle from the first call's due time to the last answer."""
    if machine is None or not calls:
        return {}
    return machine.summary(min(c.due for c in calls), max(c.done for c in calls))


def text(report: Report) -> str:
    """The report as a terminal table."""
    audit = report.audit
    lines = [
        f"fault run: {report.duration_s:.0f} s at {report.rate:g} Decide/s, "
        f"budget {report.budget_ms:g} ms; load average {report.load_average:g} "
        f"on {report.cores} cores{_machine(report)}",
        f"calls: {report.calls.get(DECIDE, 0)} Decide, {report.calls.get(ACTIVATE, 0)} Activate, "
        f"{report.calls.get(REWARD, 0)} Reward",
        f"errors returned to callers: {report.errors_total} {report.errors or ''} "
        f"({report.errors_in_flight_at_kill} of {report.decides_in_flight_at_kill} Decide calls "
        "in flight at the replica kill)",
        f"degraded answers by part: {report.degraded or 'none'} "
        f"(during faults {report.degraded_during_faults or 'none'})",
    ]
    for name, summary in report.latency_ms.items():
        lines.append(
            f"caller latency {name}: p50 {summary['p50']:.1f} ms, p99 {summary['p99']:.1f} ms, "
            f"max {summary['max']:.1f} ms"
        )
    lag = report.send_lag_ms
    lines.append(
        f"load generator's send lag (Decide): p50 {lag['p50']:.1f} ms, p99 {lag['p99']:.1f} ms, "
        f"max {lag['max']:.1f} ms"
    )
    for name, summary in report.server_ms.items():
        lines.append(
            f"Decide's own time {name} ({summary['calls']:.0f} server spans): "
            f"p50 {summary['p50']:.1f} ms, p99 {summary['p99']:.1f} ms, max {summary['max']:.1f} ms"
        )
    lines.append("")
    lines.append(
        f"{'fault':<26} {'back in':>8} {'decides':>8} {'errors':>7} {'lost':>5} {'p99 ms':>8}"
        f" {'own p99':>8} {'steal':>6}  degraded"
    )
    for fault in report.faults:
        own = "-" if fault.server_p99_ms is None else f"{fault.server_p99_ms:.1f}"
        steal = "-" if fault.steal_pct is None else f"{fault.steal_pct:.1f}%"
        lines.append(
            f"{fault.name:<26} {fault.recovery_s:>7.2f}s {fault.decides:>8} {fault.errors:>7} "
            f"{fault.lost:>5} {fault.p99_ms:>8.1f} {own:>8} {steal:>6}  {fault.degraded or '-'}"
        )
    lines += [
        "",
        f"decisions: {audit.decisions_answered} answered, {audit.decisions_logged} logged, "
        f"{audit.decisions_lost} lost ({audit.decisions_lost_flagged} flagged decision_log)",
        f"activations: {audit.activations_acknowledged} acknowledged, "
        f"{audit.activations_lost} lost",
        f"rewards: {audit.rewards_acknowledged} acknowledged, {audit.rewards_lost} lost; "
        f"{audit.rewarded_expected} rewarded decisions, {audit.rewarded_learned} learned "
        "with their reward",
        f"learner: {audit.learnable_logged} learnable decisions logged, {audit.learned} learned, "
        f"{audit.model_updates} model updates, backlog {audit.pending}{_backlog(audit)}, "
        f"caught up {audit.caught_up}",
        "",
    ]
    for goal, met in report.goals().items():
        lines.append(f"  [{'ok' if met else 'FAIL'}] {goal}")
    return "\n".join(lines)


def _backlog(audit: Audit) -> str:
    """Where a backlog is: " (emma:rewards pending 3, unread 0)", or nothing when none."""
    parts = [
        f"{stream} pending {counts['pending']}, unread {counts['unread']}"
        for stream, counts in audit.backlog.items()
        if any(counts.values())
    ]
    return f" ({'; '.join(parts)})" if parts else ""


def _machine(report: Report) -> str:
    """Where sampled, ", 1.2 % of the machine stolen by other guests"."""
    if not report.machine:
        return ""
    return f", {report.machine['steal_pct']:g} % of the machine stolen by other guests"
