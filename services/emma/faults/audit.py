"""After a run: what Redis and the learner's checkpoint hold, against what callers were told.

Nothing here trusts a service's counters alone: the decision log and the reward stream are
read entry by entry, and the learner's checkpoint is compared with them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import redis

from emma.faults.load import ACTIVATE, DECIDE, REWARD, Call
from emma.learner.config import LearnerConfig
from emma.learner.timing import JoinRule, Timing
from emma.runtime.config import load_config
from emma.runtime.stream_groups import unread

DECISION_STREAM = "emma:decisions"
REWARD_STREAM = "emma:rewards"
MODEL_KEY = "emma:model"
GROUP = "emma-learner"
PAGE = 2000


@dataclasses.dataclass(frozen=True)
class Audit:
    """What was lost, and how the learner's checkpoint compares with the streams."""

    decisions_answered: int
    decisions_logged: int
    # Answered to a caller but not in the decision log; `flagged` of them said so
    # (degraded part decision_log), the rest are silent losses.
    decisions_lost: int
    decisions_lost_flagged: int
    # Answered Activate calls of logged decisions; lost: not on the reward stream.
    activations_acknowledged: int
    activations_lost: int
    rewards_acknowledged: int
    # Acknowledged (Reward returned OK) but not on the reward stream.
    rewards_lost: int
    # Acknowledged rewards of learnable decisions (several choices; deferred ones activated).
    rewards_learnable: int
    # Reward entries of learnable decisions that came after the window: not learned, by design.
    rewards_late: int
    # Reward entries more than the outcome grace before their decision's entry: the learner
    # counts them unknown, so they are not owed either.
    rewards_early: int
    # Learnable decisions that have a reward: each must be learned once with it.
    rewarded_expected: int
    rewarded_learned: int
    # Every learnable logged decision must be learned exactly once (reward or default).
    learnable_logged: int
    learned: int
    model_updates: int
    pending: int
    caught_up: bool
    # The backlog per stream: given to the learner and not acknowledged, and not read yet.
    backlog: dict[str, dict[str, int]]
    counts: dict[str, int]
    # The event ids of the lost decisions, to place them in time.
    lost_event_ids: frozenset[str] = frozenset()

    @property
    def rewards_not_learned(self) -> int:
        """Acknowledged, learnable rewards whose decision the model did not learn with a reward."""
        return max(0, self.rewarded_expected - self.rewarded_learned)

    @property
    def learned_twice(self) -> int:
        """Updates beyond one per learnable decision: something was learned more than once."""
        return max(0, self.model_updates - self.learnable_logged)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("lost_event_ids")
        return {
            **data,
            "rewards_not_learned": self.rewards_not_learned,
            "learned_twice": self.learned_twice,
        }


def entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def entries(client: redis.Redis, stream: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Every entry of a stream (id and fields), oldest first, page by page."""
    start = "-"
    while True:
        # redis-py's stubs allow str, None and an async reply; this client returns bytes.
        page: list[Any] = list(client.xrange(stream, min=start, max="+", count=PAGE) or [])
        for entry_id, fields in page:
            yield (
                _text(entry_id),
                {_text(k): _text(v) for k, v in (fields or {}).items()},
            )
        if len(page) < PAGE:
            return
        stamp, sequence = _text(page[-1][0]).split("-")
        start = f"{stamp}-{int(sequence) + 1}"


def learner_grace_s(environ: Mapping[str, str] | None = None) -> float:
    """The outcome grace the mesh's learner runs with: its variable if set, else its default."""
    # The mesh's processes inherit this environment (emma.faults.processes), so a grace set
    # for the run reaches the learner and must reach the audit too: read as the learner does.
    return load_config(LearnerConfig, [], environ).outcome_grace_s


def checkpoint(client: redis.Redis) -> dict[str, Any]:
    raw = client.hget(MODEL_KEY, "meta")
    return {} if raw is None else dict(json.loads(raw))


def backlog_by_stream(client: redis.Redis) -> dict[str, dict[str, int]]:
    """Per stream, the entries the learner's group was given but has not acknowledged
    (`pending`) and those it has not read yet (`unread`).

    Unread as emma.runtime.stream_groups counts it: Redis's own `lag` is wrong after trims.
    """
    found: dict[str, dict[str, int]] = {}
    for stream in (DECISION_STREAM, REWARD_STREAM):
        if not client.exists(stream):
            continue
        last = client.xinfo_stream(stream)["last-generated-id"]
        for group in client.xinfo_groups(stream):
            if group["name"].decode() != GROUP:
                continue
            found[stream] = {"pending": int(group["pending"]), "unread": unread(group, last)}
    return found


def backlog(client: redis.Redis) -> int:
    """Entries the learner has not acknowledged yet, or not even read, on both streams."""
    return _total(backlog_by_stream(client))


def _total(by_stream: dict[str, dict[str, int]]) -> int:
    return sum(sum(counts.values()) for counts in by_stream.values())


def wait_caught_up(client: redis.Redis, timeout_s: float) -> bool:
    """Waits until the learner has read and acknowledged everything and no window is open."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meta = checkpoint(client)
        if meta and backlog(client) == 0 and meta.get("open_decisions") == 0:
            return True
        time.sleep(0.5)
    return False


def audit(
    client: redis.Redis,
    calls: Iterable[Call],
    window_s: float,
    timeout_s: float,
    grace_s: float | None = None,
) -> Audit:
    """Compares what callers were told with the streams and the learner's checkpoint, once
    the learner has caught up (or `timeout_s` passed); `window_s` is the reward window,
    `grace_s` the outcome grace (default: the learner's, as `learner_grace_s` reads it)."""
    # The learner's own rule: what it rightly drops as late or unknown is not owed.
    rule = JoinRule.of(window_s, learner_grace_s() if grace_s is None else grace_s)
    caught_up = wait_caught_up(client, timeout_s)
    calls = list(calls)
    answered = {c.event_id: c for c in calls if c.kind == DECIDE and not c.error}
    acknowledged = {(c.event_id, c.key) for c in calls if c.kind == REWARD and not c.error}
    activated = {c.event_id for c in calls if c.kind == ACTIVATE and not c.error}

    logged: set[str] = set()
    # When each decision with a choice was logged (Redis's clock, from the entry id); the
    # deferred ones are learnable only once activated within the rule.
    learnable: dict[str, int] = {}
    deferred: dict[str, int] = {}
    for entry_id, fields in entries(client, DECISION_STREAM):
        event_id = fields.get("event_id", "")
        logged.add(event_id)
        if int(fields.get("actions", "1")) >= 2:
            kind = deferred if fields.get("deferred") == "1" else learnable
            kind.setdefault(event_id, entry_ms(entry_id))
    outcomes = list(entries(client, REWARD_STREAM))
    activations_on_stream: set[str] = set()
    for entry_id, fields in outcomes:
        if fields.get("type") != "activation":
            continue
        event_id = fields.get("event_id", "")
        activations_on_stream.add(event_id)
        logged_ms = deferred.get(event_id)
        if logged_ms is not None and rule.timing(logged_ms, entry_ms(entry_id)) is Timing.IN_TIME:
            learnable[event_id] = logged_ms
    on_stream: set[tuple[str, str]] = set()
    # Learnable decisions with a reward within the rule: the learner owes each one.
    rewarded_events: set[str] = set()
    late = early = 0
    for entry_id, fields in outcomes:
        if fields.get("type") != "reward":
            continue
        event_id = fields.get("event_id", "")
        on_stream.add((event_id, fields.get("key", "")))
        logged_ms = learnable.get(event_id)
        if logged_ms is None:
            continue
        timing = rule.timing(logged_ms, entry_ms(entry_id))
        if timing is Timing.IN_TIME:
            rewarded_events.add(event_id)
        elif timing is Timing.LATE:
            late += 1
        else:
            early += 1

    lost = [answered[e] for e in answered.keys() - logged]
    # Not owed for a decision never logged: answered NOT_FOUND, or counted unknown.
    owed_activations = activated & logged
    meta = checkpoint(client)
    remaining = backlog_by_stream(client)
    counts = {str(k): int(v) for k, v in meta.get("counts", {}).items()}
    return Audit(
        decisions_answered=len(answered),
        decisions_logged=len(logged),
        decisions_lost=len(lost),
        decisions_lost_flagged=sum("decision_log" in c.degraded for c in lost),
        activations_acknowledged=len(owed_activations),
        activations_lost=len(owed_activations - activations_on_stream),
        rewards_acknowledged=len(acknowledged),
        rewards_lost=len(acknowledged - on_stream),
        rewards_learnable=sum(event in learnable for event, _ in acknowledged),
        rewards_late=late,
        rewards_early=early,
        rewarded_expected=len(rewarded_events),
        rewarded_learned=counts.get("rewarded", 0),
        learnable_logged=len(learnable),
        learned=counts.get("learned", 0),
        model_updates=int(meta.get("updates", 0)),
        pending=_total(remaining),
        caught_up=caught_up,
        backlog=remaining,
        counts=counts,
        lost_event_ids=frozenset(c.event_id for c in lost),
    )
