"""Joins rewards and activations to logged decisions by event id, by the learner's rule."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from emma.evaluation.records import LoggedEvent, Outcome
from emma.learner.timing import JoinRule, Timing

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    duplicate_rewards: int = 0


def _ms(instant: datetime) -> int:
    """Milliseconds since the epoch, exactly, as a stream entry id counts them."""
    return (instant - EPOCH) // timedelta(milliseconds=1)


def _timing(decision: LoggedEvent, outcome: Outcome, rule: JoinRule) -> Timing:
    """Where the outcome falls against the decision, by the clock both were logged with.

    From Redis, that is Redis's own clock (the stream entry ids), as the learner uses: a
    caller's request time may be in the past or the future. From a file, the DSJSON
    timestamps. Without both times there is nothing to hold the outcome against: it counts.
    """
    if decision.logged_at is not None and outcome.logged_at is not None:
        start, end = decision.logged_at, outcome.logged_at
    elif decision.timestamp is not None and outcome.timestamp is not None:
        start, end = decision.timestamp, outcome.timestamp
    else:
        return Timing.IN_TIME
    return rule.timing(_ms(start), _ms(end))


def join(
    decisions: Iterable[LoggedEvent],
    outcomes: Iterable[Outcome],
    *,
    window_s: float,
    grace_s: float,
    default_reward: float = 0.0,
) -> tuple[list[JoinedEvent], JoinStats]:
    """The decisions to evaluate, in log order, each with its joined reward.

    An outcome counts as the learner counts it (`JoinRule`): logged at most `window_s`
    seconds after its decision, or at most `grace_s` before it (a decision a replica wrote
    late from its buffer); one earlier than that is unknown, as the learner gave up on it.
    Rewards that count are summed (the learner's `sum` aggregation); a decision without any
    gets `default_reward`. A deferred decision counts only when it was activated in time
    (it may never have been shown). A decision with a single action (the fallback) is left
    out: every policy would choose it, so it says nothing about which policy is better.
    Repeated event ids keep the first decision, and a reward repeating an earlier one's
    idempotency key (a retried Reward) counts once, as the learner drops it.
    """
    rule = JoinRule.of(window_s, grace_s)
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
        timings = collections.Counter[Timing]()
        timely = []
        for outcome in by_event.get(event.event_id, []):
            timing = _timing(event, outcome, rule)
            timings[timing] += 1
            if timing is Timing.IN_TIME:
                timely.append(outcome)
        stats.late_outcomes += timings[Timing.LATE]
        stats.unknown_outcomes += timings[Timing.EARLY]
        if event.deferred and not any(o.activation for o in timely):
            stats.not_activated += 1
            continue
        if len(event.actions) < 2:
            stats.single_action += 1
            continue
        rewards = _once_per_key([o for o in timely if not o.activation], stats)
        stats.evaluated += 1
        stats.rewarded += bool(rewards)
        joined.append(
            JoinedEvent(
                event=event,
                reward=sum(rewards) if rewards else default_reward,
                rewarded=bool(rewards),
            )
        )
    stats.unknown_outcomes += sum(
        len(found) for event_id, found in by_event.items() if event_id not in seen
    )
    return joined, stats


def _once_per_key(rewards: list[Outcome], stats: JoinStats) -> list[float]:
    """The rewards' values, each idempotency key's first only (a reward without a key
    always counts); the repeats are counted in `stats`."""
    keys: set[str] = set()
    values = []
    for reward in rewards:
        if reward.key and reward.key in keys:
            stats.duplicate_rewards += 1
            continue
        keys.add(reward.key)
        values.append(reward.value)
    return values
