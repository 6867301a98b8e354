"""How long a call waited before its handler: the caller's timeout less what is left."""

from __future__ import annotations

import pytest

from emma.decision.queueing import CALL_TIMEOUT_HEADER, queued_s


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
