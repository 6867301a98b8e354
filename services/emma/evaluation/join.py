"""Joins rewards and activations to logged decisions by event id, within the reward window."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable

from emma.evaluation.records import LoggedEvent, Outcome


@dataclasses.dataclass(frozen=True)
class JoinedEvent:
    """A decision with its reward: the sum of the rewards within the window, else the default."""

    event: LoggedEvent
    reward: float
    rewarded: bool


@dataclasses.dataclass
class JoinStats:
    """What the join saw; reported next to the estimates so a thin log is visible."""

    decisions: int = 0
    evaluated: int = 0
    rewarded: int = 0
    duplicate_decisions: int = 0
    not_activated: int = 0
    single_action: int = 0
    late_outcomes: int = 0
    unknown_outcomes: int = 0


def _within(decision: LoggedEvent, outcome: Outcome, window_s: float) -> bool:
    """Whether the outcome came within the window, by the clock both were logged with.

    From Redis, that is Redis's own clock (the stream entry ids), as the learner uses: a
    caller's request time may be in the past or the future. From a file, the DSJSON
    timestamps. Without both times there is nothing to hold the outcome against: it counts.
    """
    if decision.logged_at is not None and outcome.logged_at is not None:
        start, end = decision.logged_at, outcome.logged_at
    elif decision.timestamp is not None and outcome.timestamp is not None:
        start, end = decision.timestamp, outcome.timestamp
    else:
        return True
    return (end - start).total_seconds() <= window_s


def join(
    decisions: Iterable[LoggedEvent],
    outcomes: Iterable[Outcome],
    *,
    window_s: float,
    default_reward: float = 0.0,
) -> tuple[list[JoinedEvent], JoinStats]:
    """The decisions to evaluate, in log order, each with its joined reward.

    Rewards of one event id within `window_s` seconds of the decision are summed (the
    learner's `sum` aggregation); a
    decision without any gets `default_reward`. A deferred decision counts only when it
    was activated within the window (it may never have been shown). A decision with a
    single action (the fallback) is left out: every policy would choose it, so it says
    nothing about which policy is better. Repeated event ids keep the first decision.
    """
    by_event: dict[str, list[Outcome]] = collections.defaultdict(list)
    for outcome in outcomes:
        by_event[outcome.event_id].append(outcome)
    stats = JoinStats()
    seen: set[str] = set()
    joined: list[JoinedEvent] = []
    for event in decisions:
        stats.decisions += 1
        if event.event_id in seen:
            stats.duplicate_decisions += 1
            continue
        seen.add(event.event_id)
        mine = by_event.get(event.event_id, [])
        timely = [o for o in mine if _within(event, o, window_s)]
        stats.late_outcomes += len(mine) - len(timely)
        if event.deferred and not any(o.activation for o in timely):
            stats.not_activated += 1
            continue
        if len(event.actions) < 2:
            stats.single_action += 1
            continue
        rewards = [o.value for o in timely if not o.activation]
        stats.evaluated += 1
        stats.rewarded += bool(rewards)
        joined.append(
            JoinedEvent(
                event=event,
                reward=sum(rewards) if rewards else default_reward,
                rewarded=bool(rewards),
            )
        )
    stats.unknown_outcomes = sum(
        len(found) for event_id, found in by_event.items() if event_id not in seen
    )
    return joined, stats
