"""How much of a Decide's budget to keep back from its dependencies for deciding itself."""

from __future__ import annotations

import math

# Recent decisions whose post-fetch time the reserve is read from, and how often it is read.
WINDOW = 256
REFRESH_EVERY = 32
# The share of decisions that must finish inside the budget when a dependency is late.
QUANTILE = 0.99


class DecideReserve:
    """The time from "profile and context are in (or given up)" to the answer, kept back.

    Given up means from the fetch deadline: a loop running behind wakes up late for it, and
    that lateness is part of what deciding takes on a busy replica.

    A dependency that hangs gets the budget minus this reserve, so a decision made without
    it still answers within the budget: the reserve follows the 99th percentile of the
    recent post-fetch times (eligibility, the model, the contact policy, the log write),
    never below `least_s` and never above `most_share` of the budget, so dependencies
    always get most of it.
    """

    def __init__(self, least_s: float, most_share: float = 0.5) -> None:
        self.least_s = least_s
        self.most_share = most_share
        self._recent: list[float] = []
        self._next = 0
        self._seen = 0
        self._quantile = least_s

    def observe(self, seconds: float) -> None:
        if len(self._recent) < WINDOW:
            self._recent.append(seconds)
        else:
            self._recent[self._next] = seconds
            self._next = (self._next + 1) % WINDOW
        self._seen += 1
        if self._seen % REFRESH_EVERY == 0 or self._seen < REFRESH_EVERY:
            ordered = sorted(self._recent)
            self._quantile = ordered[min(len(ordered) - 1, math.ceil(QUANTILE * len(ordered)) - 1)]

    def for_budget(self, budget_s: float) -> float:
        """Seconds to keep back from a budget of `budget_s`."""
        return min(max(self.least_s, self._quantile), budget_s * self.most_share)
