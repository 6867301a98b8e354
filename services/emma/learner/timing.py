"""When an outcome joins its decision: from the grace before its entry to the window after."""

from __future__ import annotations

import dataclasses
import enum


class Timing(enum.Enum):
    """Where an outcome's entry time falls against its decision's entry time."""

    IN_TIME = "in_time"
    LATE = "late"  # more than the window after the decision
    EARLY = "early"  # more than the grace before it: as if the decision had never come


@dataclasses.dataclass(frozen=True)
class JoinRule:
    """The learner's rule; the offline evaluation joins with it too, so both count alike.

    Times are milliseconds of stream entry ids (Redis's clock), nothing else: a backlog read
    long after joins exactly as a live learner does.
    """

    window_ms: int
    grace_ms: int

    @classmethod
    def of(cls, window_s: float, grace_s: float) -> JoinRule:
        return cls(int(window_s * 1000), int(grace_s * 1000))

    def timing(self, decision_ms: int, outcome_ms: int) -> Timing:
        # A replica may write a decision late, from its buffer, after another replica logged
        # its outcome; a live learner waits the grace for it and then gives up, so a decision
        # logged later than that is too late whichever entry is read first.
        if decision_ms > outcome_ms + self.grace_ms:
            return Timing.EARLY
        if outcome_ms > decision_ms + self.window_ms:
            return Timing.LATE
        return Timing.IN_TIME
