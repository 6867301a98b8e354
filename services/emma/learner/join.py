"""The reward join: rewards and activations matched to open decisions by event id, in window.

Pure and deterministic: every time is a stream entry id's millisecond part (Redis's
clock), so replaying the same entries after a restart gives the same joins. The join
says what to learn and which entries are finished; the caller learns and acknowledges.

An outcome joins a decision logged at most the grace after it (a replica may write a
decision late, from its buffer, after another replica logged the outcome) and at most the
window before it (`JoinRule`, which the offline evaluation joins with too). Outcomes of
event ids not logged yet are held until the grace ends.
"""

from __future__ import annotations

import collections
import dataclasses
import enum

from emma.learner.held import Held
from emma.learner.timing import JoinRule, Timing

# How many finished event ids are remembered to tell a late reward from an unknown one.
FINISHED_MEMORY = 100_000
# How many outcomes of event ids not logged yet are held for their decision at most.
HELD_MAX = 10_000


class Aggregation(enum.StrEnum):
    """FIRST learns at a decision's first reward; SUM learns the window's total at its end."""

    FIRST = "first"
    SUM = "sum"


class Outcome(enum.StrEnum):
    """What became of a stream entry, counted for operators."""

    JOINED = "joined"  # a reward or activation matched to a decision, once that is finished
    LATE = "late"  # after its decision's window
    UNKNOWN = "unknown"  # no decision with this event id logged within the grace (or long gone)
    HELD_OVERFLOW = "held_overflow"  # also UNKNOWN: pushed out of a full hold before its grace
    DUPLICATE = "duplicate"  # a repeated idempotency key, activation or decision
    IGNORED = "ignored"  # a reward after the first, with FIRST aggregation
    LEARNED = "learned"  # a decision learned from
    REWARDED = "rewarded"  # a decision learned from with the rewards of its window
    NOT_ACTIVATED = "not_activated"  # a deferred decision never shown: not learned
    NO_CHOICE = "no_choice"  # a single-action (fallback) decision: nothing to learn


# What an outcome out of its decision's time counts as; a live learner that waited the grace
# in vain and one reading a backlog (the decision first) both count an early one unknown.
_DROPPED = {Timing.EARLY: Outcome.UNKNOWN, Timing.LATE: Outcome.LATE}


def entry_ms(entry_id: str) -> int:
    """The millisecond timestamp of a stream entry id such as `1718000000000-3`."""
    return int(entry_id.split("-", 1)[0])


@dataclasses.dataclass(frozen=True)
class DecisionEntry:
    entry_id: str
    event_id: str
    deferred: bool
    actions: int


@dataclasses.dataclass(frozen=True)
class OutcomeEntry:
    entry_id: str
    event_id: str
    activation: bool
    value: float = 0.0
    key: str = ""


@dataclasses.dataclass(frozen=True)
class Update:
    """Learn the decision logged at `entry_id` with this reward (VW's cost is its negative)."""

    entry_id: str
    event_id: str
    reward: float
    rewarded: bool


@dataclasses.dataclass(slots=True)
class _Open:
    """An open decision; lean, as the learner holds a reward window's worth of them."""

    entry_id: str
    deferred: bool
    activated: bool = False
    # Created with the first outcome: most decisions never get one.
    rewards: list[float] | None = None
    keys: set[str] | None = None
    # Reward-stream entries that belong to this decision: acknowledged when it is finished.
    outcome_ids: list[str] | None = None

    @property
    def learnable(self) -> bool:
        return self.activated or not self.deferred


@dataclasses.dataclass
class Finished:
    """What the caller must do after a step: learn these, then acknowledge those entries."""

    updates: list[Update] = dataclasses.field(default_factory=list)
    decision_acks: list[str] = dataclasses.field(default_factory=list)
    outcome_acks: list[str] = dataclasses.field(default_factory=list)
    counts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def extend(self, other: Finished) -> None:
        self.updates.extend(other.updates)
        self.decision_acks.extend(other.decision_acks)
        self.outcome_acks.extend(other.outcome_acks)
        self.counts.update(other.counts)


class Join:
    """Open decisions and their outcomes until each is learned or dropped."""

    def __init__(
        self,
        window_s: float,
        aggregation: Aggregation,
        default_reward: float,
        finished_memory: int = FINISHED_MEMORY,
        grace_s: float = 0.0,
        held_max: int = HELD_MAX,
    ) -> None:
        self.rule = JoinRule.of(window_s, grace_s)
        self.aggregation = aggregation
        self.default_reward = default_reward
        self._open: dict[str, _Open] = {}
        self._finished: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._finished_memory = finished_memory
        # Held outcomes stay unacknowledged, not in the checkpoint: the PEL already keeps an
        # open decision's outcomes until it is learned, so a restarted learner reads a held
        # outcome again (in stream order, with the same entry time) and holds or joins it as
        # before. Nothing held is acknowledged, so no checkpoint can lose it.
        self._held: Held[OutcomeEntry] = Held(self.rule.grace_ms, held_max)

    def __len__(self) -> int:
        return len(self._open)

    @property
    def held(self) -> int:
        """Outcomes waiting for their decision's entry."""
        return len(self._held)

    def oldest_ms(self) -> int | None:
        """When the oldest open decision was made, for the learner's lag."""
        first = next(iter(self._open.values()), None)
        return None if first is None else entry_ms(first.entry_id)

    def _finish(self, event_id: str, entry_ms_: int, step: Finished, outcome: Outcome) -> None:
        decision = self._open.pop(event_id)
        step.decision_acks.append(decision.entry_id)
        step.outcome_acks.extend(decision.outcome_ids or ())
        # Counted with their acknowledgement, not on arrival: an outcome of a decision still
        # open at a checkpoint stays pending and is joined again after a restart.
        if decision.outcome_ids:
            step.counts[Outcome.JOINED] += len(decision.outcome_ids)
        step.counts[outcome] += 1
        self._finished[event_id] = entry_ms_
        while len(self._finished) > self._finished_memory:
            self._finished.popitem(last=False)

    def _learn(self, event_id: str, step: Finished, reward: float, rewarded: bool) -> None:
        decision = self._open[event_id]
        step.updates.append(Update(decision.entry_id, event_id, reward, rewarded))
        if rewarded:
            # Apart from LEARNED, so an audit can tell rewards learned from defaults learned.
            step.counts[Outcome.REWARDED] += 1
        self._finish(event_id, entry_ms(decision.entry_id), step, Outcome.LEARNED)

    def decision(self, entry: DecisionEntry) -> Finished:
        step = Finished()
        if entry.event_id in self._open or entry.event_id in self._finished:
            step.decision_acks.append(entry.entry_id)
            step.counts[Outcome.DUPLICATE] += 1
        elif entry.actions < 2:
            step.decision_acks.append(entry.entry_id)
            step.counts[Outcome.NO_CHOICE] += 1
            self._finished[entry.event_id] = entry_ms(entry.entry_id)
        else:
            self._open[entry.event_id] = _Open(entry.entry_id, entry.deferred)
        # Outcomes logged before this entry join it now, in their order, with its window
        # counted from its own entry time as for any other decision.
        for held in self._held.take(entry.event_id):
            step.extend(self.outcome(held))
        return step

    def outcome(self, entry: OutcomeEntry) -> Finished:
        step = Finished()
        decision = self._open.get(entry.event_id)
        if decision is None:
            finished_ms = self._finished.get(entry.event_id)
            if finished_ms is None:
                return self._hold(entry, step)
            timing = self.rule.timing(finished_ms, entry_ms(entry.entry_id))
            if timing is Timing.IN_TIME:
                # The decision was learned at its first reward (or had no choice to learn
                # from): a further outcome changes nothing.
                return self._drop(entry, step, Outcome.IGNORED)
            return self._drop(entry, step, _DROPPED[timing])
        timing = self.rule.timing(entry_ms(decision.entry_id), entry_ms(entry.entry_id))
        if timing is not Timing.IN_TIME:
            return self._drop(entry, step, _DROPPED[timing])
        if entry.activation:
            if decision.activated:
                return self._drop(entry, step, Outcome.DUPLICATE)
            decision.activated = True
        else:
            if entry.key and decision.keys and entry.key in decision.keys:
                return self._drop(entry, step, Outcome.DUPLICATE)
            if entry.key:
                decision.keys = (decision.keys or set()) | {entry.key}
            decision.rewards = [*(decision.rewards or ()), entry.value]
        decision.outcome_ids = [*(decision.outcome_ids or ()), entry.entry_id]
        if self.aggregation is Aggregation.FIRST and decision.learnable and decision.rewards:
            self._learn(entry.event_id, step, decision.rewards[0], True)
        return step

    def _hold(self, entry: OutcomeEntry, step: Finished) -> Finished:
        if self.rule.grace_ms <= 0:
            return self._drop(entry, step, Outcome.UNKNOWN)
        for pushed in self._held.add(entry.event_id, entry_ms(entry.entry_id), entry):
            self._drop(pushed, step, Outcome.UNKNOWN)
            step.counts[Outcome.HELD_OVERFLOW] += 1
        return step

    def expire(self, seen_ms: int) -> Finished:
        """Counts unknown the held outcomes whose grace ended before `seen_ms`.

        The caller promises that every decision with an entry time before `seen_ms` has been
        given to `decision` already; a decision at exactly the grace's end still joins.
        """
        step = Finished()
        for entry in self._held.expire(seen_ms):
            self._drop(entry, step, Outcome.UNKNOWN)
        return step

    @staticmethod
    def _drop(entry: OutcomeEntry, step: Finished, outcome: Outcome) -> Finished:
        step.outcome_acks.append(entry.entry_id)
        step.counts[outcome] += 1
        return step

    def close(self, seen_ms: int) -> Finished:
        """Ends the windows that closed before `seen_ms`.

        The caller promises that every outcome with an entry time before `seen_ms` has
        been given to `outcome` already; an outcome at exactly a window's end still counts.
        """
        step = Finished()
        # Open decisions are in stream order, which is time order: stop at the first open one.
        while self._open:
            event_id, decision = next(iter(self._open.items()))
            if entry_ms(decision.entry_id) + self.rule.window_ms >= seen_ms:
                break
            if not decision.learnable:
                self._finish(event_id, entry_ms(decision.entry_id), step, Outcome.NOT_ACTIVATED)
            elif decision.rewards:
                # FIRST has learned at the first reward already; this is SUM's total.
                self._learn(event_id, step, sum(decision.rewards), True)
            else:
                self._learn(event_id, step, self.default_reward, False)
        return step
