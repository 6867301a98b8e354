"""The decide reserve: kept back from the dependencies, following recent post-fetch times."""

from __future__ import annotations

import pytest

from emma.decision.reserve import WINDOW, DecideReserve


def test_a_new_reserve_keeps_back_its_least() -> None:
    assert DecideReserve(0.003).for_budget(0.05) == pytest.approx(0.003)


def test_the_reserve_follows_the_99th_percentile_of_recent_decisions() -> None:
    reserve = DecideReserve(0.001)
    for index in range(WINDOW):
        # 2 % of decisions take 8 ms after their fetches, the rest 1.5 ms.
        reserve.observe(0.008 if index % 50 == 0 else 0.0015)
    assert reserve.for_budget(0.05) == pytest.approx(0.008)


def test_slow_decisions_age_out_of_the_window() -> None:
    reserve = DecideReserve(0.001)
    for _ in range(WINDOW):
        reserve.observe(0.02)
    for _ in range(WINDOW):
        reserve.observe(0.002)
    assert reserve.for_budget(0.05) == pytest.approx(0.002)


def test_dependencies_always_get_at_least_half_the_budget() -> None:
    reserve = DecideReserve(0.001)
    for _ in range(WINDOW):
        reserve.observe(0.04)
    assert reserve.for_budget(0.05) == pytest.approx(0.025)
    assert DecideReserve(0.1).for_budget(0.01) == pytest.approx(0.005)
