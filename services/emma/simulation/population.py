"""A synthetic population: hidden tastes, what each customer reveals, consent, and visits."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from emma.simulation.world import Moment, Tastes

# Channels of each touchpoint the simulation uses (the decision service's touchpoint rules).
APP_CHANNELS = ("in_app", "push", "email", "sms")
POS_CHANNELS = ("receipt", "cashier_prompt", "store_screen")
# Channels that reach out and so need marketing consent (in-app answers the open app).
MARKETING_CHANNELS = ("push", "email", "sms")
# Stores of the bundled store registry (context service); all in Germany.
STORES = ("berlin-mitte", "muenchen-marienplatz", "hamburg-altona", "koeln-dom", "leipzig-zentrum")
ZONE = ZoneInfo("Europe/Berlin")
# Offer id of the past campaign whose responses reveal channel tastes; not in the catalog,
# so it never interferes with dismissal cool-downs of real offers.
PAST_CAMPAIGN = "sim-past-campaign"


@dataclasses.dataclass(frozen=True)
class PopulationSettings:
    """How the population is drawn; the defaults make a realistic, learnable mix."""

    customers: int = 400
    # Share who consent to personalisation (their profile reaches the model).
    personalised: float = 0.9
    # Share of marketing consent granted per channel; the rest is denied.
    marketing: tuple[tuple[str, float], ...] = (("push", 0.6), ("email", 0.7), ("sms", 0.3))
    # Share who state their favourite categories as likes.
    states_likes: float = 0.6
    # Share with a category they dislike, and of those, who say so (the service filters it).
    has_dislike: float = 0.4
    states_dislike: float = 0.5
    purchases: int = 8
    past_contacts: int = 40


@dataclasses.dataclass(frozen=True)
class Customer:
    """A simulated customer: the hidden truth and what the profile service is told."""

    customer_id: str
    tastes: Tastes
    personalised: bool
    marketing: frozenset[str]  # channels with marketing consent
    liked: tuple[str, ...]  # stated liked categories
    disliked: tuple[str, ...]  # stated disliked categories
    home_store: str
    # Categories of past baskets, one tuple per purchase, most recent first.
    purchases: tuple[tuple[str, ...], ...]
    # (channel, clicked) of past campaign contacts.
    contacts: tuple[tuple[str, bool], ...]

    @property
    def ref(self) -> tuple[str, str]:
        return ("customer_id", self.customer_id)


def _category_tastes(
    rng: np.random.Generator, categories: Sequence[str], settings: PopulationSettings
) -> tuple[dict[str, float], tuple[str, ...], str | None]:
    tastes = {c: float(rng.normal(0.0, 0.3)) for c in categories}
    favourites = tuple(str(c) for c in rng.choice(categories, size=2, replace=False))
    for category in favourites:
        tastes[category] = float(rng.uniform(1.5, 2.5))
    disliked = None
    others = [c for c in categories if c not in favourites]
    if others and rng.random() < settings.has_dislike:
        disliked = str(rng.choice(others))
        tastes[disliked] = -2.0
    return tastes, favourites, disliked


def _channel_tastes(rng: np.random.Generator) -> dict[str, float]:
    tastes = {c: float(rng.normal(0.0, 0.2)) for c in (*APP_CHANNELS, *POS_CHANNELS)}
    preferred = str(rng.choice(("in_app", "push", "email"), p=(0.4, 0.35, 0.25)))
    tastes[preferred] += float(rng.uniform(0.8, 1.4))
    tastes["sms"] -= 0.6
    tastes["cashier_prompt"] += 0.3
    tastes["store_screen"] -= 0.3
    return tastes


def _softmax_choice(rng: np.random.Generator, tastes: dict[str, float], size: int) -> list[str]:
    names = sorted(tastes)
    weights = np.array([math.exp(tastes[n]) for n in names])
    return [str(c) for c in rng.choice(names, size=size, p=weights / weights.sum())]


def make_customer(
    rng: np.random.Generator,
    customer_id: str,
    categories: Sequence[str],
    settings: PopulationSettings,
) -> Customer:
    category_tastes, favourites, disliked = _category_tastes(rng, categories, settings)
    channel_tastes = _channel_tastes(rng)
    marketing = frozenset(c for c, share in settings.marketing if rng.random() < share)
    purchases = tuple(
        tuple(_softmax_choice(rng, category_tastes, 2)) for _ in range(settings.purchases)
    )
    contacts = []
    for _ in range(settings.past_contacts):
        channel = str(rng.choice(("in_app", "push", "email")))
        chance = 1.0 / (1.0 + math.exp(1.5 - channel_tastes[channel]))
        contacts.append((channel, bool(rng.random() < chance)))
    return Customer(
        customer_id=customer_id,
        tastes=Tastes(categories=category_tastes, channels=channel_tastes),
        personalised=bool(rng.random() < settings.personalised),
        marketing=marketing,
        liked=favourites if rng.random() < settings.states_likes else (),
        disliked=(disliked,) if disliked and rng.random() < settings.states_dislike else (),
        home_store=str(rng.choice(STORES)),
        purchases=purchases,
        contacts=tuple(contacts),
    )


def make_population(
    categories: Sequence[str], settings: PopulationSettings, seed: int, prefix: str
) -> tuple[Customer, ...]:
    """`settings.customers` customers with ids `<prefix>-<n>`, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return tuple(
        make_customer(rng, f"{prefix}-{n:05d}", sorted(categories), settings)
        for n in range(settings.customers)
    )


# Hours people open the app (weights per local hour 0..23): evenings busiest, nights quiet.
APP_HOURS = np.array(
    [1, 0.5, 0.3, 0.2, 0.3, 0.8, 2, 4, 5, 4, 3, 3, 4, 3, 3, 3, 4, 5, 6, 6, 5, 4, 3, 2],
    dtype=float,
)
# Till visits: the demo stores' opening hours, Monday to Saturday.
POS_HOURS = np.array([0] * 7 + [2, 3, 3, 3, 4, 5, 4, 3, 3, 4, 6, 6, 5, 3, 0, 0, 0], dtype=float)


@dataclasses.dataclass(frozen=True)
class Visits:
    """Draws who asks when: customers uniformly, days uniformly over a span, hours by habit."""

    customers: Sequence[Customer]
    start: date = date(2026, 1, 1)
    days: int = 365
    pos_share: float = 0.35

    def draw(self, rng: np.random.Generator) -> tuple[Customer, Moment]:
        customer = self.customers[int(rng.integers(len(self.customers)))]
        day = self.start + timedelta(days=int(rng.integers(self.days)))
        at_till = rng.random() < self.pos_share
        if at_till:
            while day.isoweekday() == 7:  # the stores are closed on Sundays
                day = self.start + timedelta(days=int(rng.integers(self.days)))
            hours = POS_HOURS
        else:
            hours = APP_HOURS
        hour = int(rng.choice(24, p=hours / hours.sum()))
        minute, second = int(rng.integers(60)), int(rng.integers(60))
        local = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ZONE)
        moment = Moment(
            instant=local.astimezone(UTC),
            local=local,
            touchpoint="pos" if at_till else "app",
            store_id=customer.home_store if at_till else "",
        )
        return customer, moment
