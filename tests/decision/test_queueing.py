"""How long a call waited before its handler: the caller's timeout less what is left."""

from __future__ import annotations

import pytest

from emma.decision.queueing import CALL_TIMEOUT_HEADER, StandingQueue, queued_s


def test_the_wait_is_the_callers_timeout_less_what_is_left() -> None:
    metadata = [("authorization", "Bearer t"), (CALL_TIMEOUT_HEADER, "1000")]
    assert queued_s(metadata, 0.6) == pytest.approx(0.4)
    # gRPC's clock may leave a hair more than the caller gave: never a negative wait.
    assert queued_s(metadata, 1.0004) == 0.0


@pytest.mark.parametrize(
    ("metadata", "remaining"),
    [
        ([], 0.5),  # the caller did not say
        (None, 0.5),
        ([(CALL_TIMEOUT_HEADER, "1000")], None),  # no deadline
        ([(CALL_TIMEOUT_HEADER, "soon")], 0.5),  # malformed: ignored, never an error
        ([(CALL_TIMEOUT_HEADER, "0")], 0.5),
        ([(CALL_TIMEOUT_HEADER, "-5")], 0.5),
    ],
)
def test_without_a_usable_timeout_the_wait_is_unknown(
    metadata: list[tuple[str, str]] | None, remaining: float | None
) -> None:
    assert queued_s(metadata, remaining) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_queue_stands_once_an_interval_passed_without_a_short_wait() -> None:
    clock = Clock()
    queue = StandingQueue(0.005, clock=clock)
    # A burst: long waits, but one call in the interval came through at once.
    for wait in (0.03, 0.04, 0.001, 0.03):
        assert queue.limit_s(wait, 0.05) == 0.05
        clock.now += 0.02
    assert queue.limit_s(0.03, 0.05) == 0.05  # the interval ended with a short wait
    assert not queue.standing
    # Then an interval in which every call waited past the target: the queue stands.
    for _ in range(5):
        queue.limit_s(0.02, 0.05)
        clock.now += 0.025
    assert queue.limit_s(0.02, 0.05) == 0.005
    assert queue.standing
    # The fallbacks drain it: an interval with a short wait ends it.
    queue.limit_s(0.002, 0.05)
    clock.now += 0.1
    assert queue.limit_s(0.002, 0.05) == 0.05
    assert not queue.standing


def test_an_interval_without_calls_had_no_queue() -> None:
    clock = Clock()
    queue = StandingQueue(0.005, clock=clock)
    clock.now += 0.5
    assert queue.limit_s(0.02, 0.05) == 0.05
    assert not queue.standing
    # A queue that stood is gone after a quiet interval too: the calls after it are not
    # judged by the waits before it.
    for _ in range(5):
        queue.limit_s(0.02, 0.05)
        clock.now += 0.025
    assert queue.standing
    clock.now += 0.5
    assert queue.limit_s(0.02, 0.05) == 0.05
    assert not queue.standing


def test_a_target_of_zero_keeps_the_whole_budget() -> None:
    clock = Clock()
    queue = StandingQueue(0.0, clock=clock)
    for _ in range(10):
        assert queue.limit_s(0.03, 0.05) == 0.05
        clock.now += 0.05


def test_behind_a_standing_queue_a_longer_budget_waits_longer() -> None:
    clock = Clock()
    queue = StandingQueue(0.005, clock=clock)
    for _ in range(5):
        queue.limit_s(0.02, 0.05)
        clock.now += 0.025
    assert queue.standing
    # The default budget: the target. A caller that gives 3 s: a tenth of it (a closed
    # loop with many calls in flight keeps such a queue; its calls are not shed in budget).
    assert queue.limit_s(0.02, 0.05) == 0.005
    assert queue.limit_s(0.02, 3.0) == pytest.approx(0.3)
    # Never beyond the budget itself.
    assert queue.limit_s(0.02, 0.004) == 0.004
