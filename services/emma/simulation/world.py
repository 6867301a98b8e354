"""The hidden world: how likely a simulated customer is to respond to an offer on a channel.

The click probability is a logistic function of additive effects, each of which the
decision service can observe only indirectly:

    logit p = base + offer bias + taste(customer, category) + daypart(category)
              + season(category) + channel taste(customer, channel) + daypart(channel)

Tastes show in the profile as stated likes and purchase history; channel tastes as past
responses per channel; daypart and season come from the context service. The best action
therefore depends on who the customer is and when they ask: no single offer wins.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime

from emma.decision.catalog import Offer
from emma.decision.domain import Channel

# The world's own clock, matching the context service's defaults (EMMA_DAYPARTS and the
# northern hemisphere's meteorological seasons).
DAYPART_STARTS = ((5, "morning"), (11, "lunch"), (14, "afternoon"), (17, "evening"), (22, "night"))
SEASON_OF_MONTH = {
    12: "winter", 1: "winter", 2: "winter",
    3: "spring", 4: "spring", 5: "spring",
    6: "summer", 7: "summer", 8: "summer",
    9: "autumn", 10: "autumn", 11: "autumn",
}  # fmt: skip

Effects = Mapping[str, Mapping[str, float]]


def daypart_of(local: datetime) -> str:
    current = DAYPART_STARTS[-1][1]
    for start, name in DAYPART_STARTS:
        if local.hour < start:
            break
        current = name
    return current


def season_of(local: datetime) -> str:
    return SEASON_OF_MONTH[local.month]


# What sells when: category -> daypart -> logit shift.
DAYPART_EFFECTS: Effects = {
    "coffee": {"morning": 1.2, "lunch": 0.3, "afternoon": 0.5, "evening": -0.8, "night": -1.0},
    "bakery": {"morning": 1.0, "lunch": 0.6, "evening": -0.8, "night": -1.0},
    "breakfast": {"morning": 1.0, "lunch": -0.3, "evening": -0.5, "night": -0.8},
    "cheese": {"lunch": 0.3, "evening": 0.6, "morning": -0.3},
    "wine": {"morning": -1.2, "lunch": -0.5, "evening": 1.2, "night": 0.6},
    "sweets": {"afternoon": 0.8, "evening": 0.3, "morning": -0.4},
    "fruit": {"lunch": 0.5, "afternoon": 0.4, "night": -0.5},
    "drinks": {"lunch": 0.3, "afternoon": 0.5, "night": -0.3},
}
# What sells in which season: category -> season -> logit shift.
SEASON_EFFECTS: Effects = {
    "fruit": {"spring": 0.6, "summer": 1.2, "autumn": -0.3, "winter": -1.0},
    "drinks": {"spring": 0.2, "summer": 1.0, "winter": -0.8},
    "sweets": {"summer": -0.8, "autumn": 0.5, "winter": 1.2},
    "wine": {"summer": -0.2, "autumn": 0.3, "winter": 0.4},
    "coffee": {"summer": -0.3, "winter": 0.3},
}
# When a channel works: channel -> daypart -> logit shift (a push at night annoys).
CHANNEL_DAYPART_EFFECTS: Effects = {
    "push": {"morning": -0.2, "evening": 0.4, "night": -1.0},
    "email": {"morning": 0.4, "night": -0.3},
    "in_app": {"evening": 0.2},
}


@dataclasses.dataclass(frozen=True)
class Moment:
    """Where and when a simulated decision happens."""

    instant: datetime  # aware, UTC: the request_time sent to Decide
    local: datetime  # the customer's wall clock
    touchpoint: str  # "app" or "pos"
    store_id: str = ""

    @property
    def daypart(self) -> str:
        return daypart_of(self.local)

    @property
    def season(self) -> str:
        return season_of(self.local)


@dataclasses.dataclass(frozen=True)
class Tastes:
    """A customer's hidden preferences (logit shifts)."""

    categories: Mapping[str, float]
    channels: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class World:
    """The response model; `base` sets how rare a response is without any fit."""

    base: float = -3.2
    offer_bias: Mapping[str, float] = dataclasses.field(default_factory=dict)
    dayparts: Effects = dataclasses.field(default_factory=lambda: DAYPART_EFFECTS)
    seasons: Effects = dataclasses.field(default_factory=lambda: SEASON_EFFECTS)
    channel_dayparts: Effects = dataclasses.field(default_factory=lambda: CHANNEL_DAYPART_EFFECTS)

    def logit(self, tastes: Tastes, moment: Moment, offer: Offer, channel: Channel) -> float:
        category, daypart, season = offer.category, moment.daypart, moment.season
        return (
            self.base
            + self.offer_bias.get(offer.offer_id, 0.0)
            + tastes.categories.get(category, 0.0)
            + self.dayparts.get(category, {}).get(daypart, 0.0)
            + self.seasons.get(category, {}).get(season, 0.0)
            + tastes.channels.get(channel.value, 0.0)
            + self.channel_dayparts.get(channel.value, {}).get(daypart, 0.0)
        )

    def probability(self, tastes: Tastes, moment: Moment, offer: Offer, channel: Channel) -> float:
        """The chance this customer responds (reward 1) to `offer` on `channel` at `moment`."""
        return 1.0 / (1.0 + math.exp(-self.logit(tastes, moment, offer, channel)))
