"""What the simulated customers do between requests: the events that make trigger rules fire.

Each customer lives through a span of days: visits to the home store with the app's
location pings (sometimes two on one visit), coffee bought at a personal interval by the
regulars, products looked at in the app and often not bought, a birthday, now and then a
move, a wedding or a baby, and support contacts, some of them unhappy. The timeline is
drawn from the seed alone, in time order, as the profile service's public events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
from google.protobuf import timestamp_pb2

from emma.common.v1 import common_pb2
from emma.profile.v1 import profile_pb2
from emma.simulation.population import APP_HOURS, STORES, ZONE, Customer

# The product a coffee regular buys again and again (category coffee, as the rules watch).
COFFEE_PRODUCT = ("espresso_beans", "coffee")
# Hours of store visits (local), Monday to Saturday: inside the stores' opening hours.
VISIT_HOURS = tuple(range(8, 19))


@dataclasses.dataclass(frozen=True)
class HabitSettings:
    """How often things happen; the defaults give every trigger kind work in a few weeks."""

    # Store visits per week, and the share of visits the app reports with a location ping.
    visits_per_week: float = 1.5
    pings: float = 0.6
    # Share of pinged visits that ping again a few minutes later (the rule fires once).
    second_ping: float = 0.3
    # Share of customers who buy coffee regularly, and their interval range in days.
    coffee_regulars: float = 0.4
    coffee_interval_days: tuple[int, int] = (9, 16)
    # Products looked at in the app per week, and the share bought soon after.
    views_per_week: float = 1.0
    bought_after_view: float = 0.4
    # Share who have told their birthday.
    birthday_known: float = 0.7
    # Chances over the whole span, per customer.
    moved: float = 0.05
    married: float = 0.03
    new_baby: float = 0.03
    support_contacts: float = 0.4


@dataclasses.dataclass(frozen=True)
class Happening:
    """One event of a simulated customer, at its time."""

    at: datetime
    customer: Customer
    event: profile_pb2.Event


StoreLocations = Mapping[str, tuple[float, float]]


class _Writer:
    """Builds one customer's events with stable, unique ids."""

    def __init__(self, customer: Customer, prefix: str) -> None:
        self.customer = customer
        self.prefix = prefix
        self.ref = common_pb2.CustomerRef(
            kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value=customer.customer_id
        )
        self.count = 0
        self.happenings: list[Happening] = []

    def add(self, at: datetime, **payload: object) -> None:
        self.count += 1
        event = profile_pb2.Event(
            event_id=f"{self.prefix}-{self.customer.customer_id}-{self.count}",
            customer=self.ref,
            time=timestamp(at),
            **payload,  # type: ignore[arg-type]
        )
        self.happenings.append(Happening(at, self.customer, event))


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _local(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def _visit_time(rng: np.random.Generator, day: date) -> datetime:
    return _local(day, int(rng.choice(VISIT_HOURS)), int(rng.integers(60)))


def _app_time(rng: np.random.Generator, day: date) -> datetime:
    hour = int(rng.choice(24, p=APP_HOURS / APP_HOURS.sum()))
    return _local(day, hour, int(rng.integers(60)))


def _purchase(product: str, category: str, store: str) -> profile_pb2.Purchase:
    purchase = profile_pb2.Purchase(store_id=store, currency="EUR")
    purchase.items.add(product_id=product, category=category, quantity=1, amount=4.99)
    return purchase


def _visits(
    writer: _Writer,
    rng: np.random.Generator,
    days: Sequence[date],
    stores: StoreLocations,
    settings: HabitSettings,
) -> None:
    home = writer.customer.home_store
    if home not in stores:
        return
    latitude, longitude = stores[home]
    for day in days:
        # Stores are closed on Sundays; the visits of a week fall on the other six days.
        if day.isoweekday() == 7 or rng.random() >= settings.visits_per_week / 6:
            continue
        if rng.random() >= settings.pings:
            continue
        at = _visit_time(rng, day)
        ping = profile_pb2.LocationPing(
            location=common_pb2.GeoPoint(latitude=latitude, longitude=longitude), accuracy=10
        )
        writer.add(at, location=ping)
        if rng.random() < settings.second_ping:
            writer.add(at + timedelta(minutes=int(rng.integers(3, 15))), location=ping)


def _coffee(
    writer: _Writer, rng: np.random.Generator, days: Sequence[date], settings: HabitSettings
) -> None:
    low, high = settings.coffee_interval_days
    interval = int(rng.integers(low, high + 1))
    # Three purchases before the span make the interval known from its first days.
    day = days[0] - timedelta(days=3 * interval - int(rng.integers(interval)))
    product, category = COFFEE_PRODUCT
    while day <= days[-1]:
        if day.isoweekday() == 7:
            day += timedelta(days=1)
        writer.add(
            _visit_time(rng, day), purchase=_purchase(product, category, writer.customer.home_store)
        )
        day += timedelta(days=interval + int(rng.integers(-1, 2)))


def _views(
    writer: _Writer,
    rng: np.random.Generator,
    days: Sequence[date],
    settings: HabitSettings,
    products: Sequence[tuple[str, str]],
) -> None:
    for day in days:
        if rng.random() >= settings.views_per_week / 7:
            continue
        product, category = products[int(rng.integers(len(products)))]
        at = _app_time(rng, day)
        view = profile_pb2.Interaction(
            kind=profile_pb2.INTERACTION_KIND_VIEW,
            product_id=product,
            category=category,
            channel=common_pb2.CHANNEL_IN_APP,
        )
        writer.add(at, interaction=view)
        if rng.random() < settings.bought_after_view:
            later = at + timedelta(minutes=int(rng.integers(10, 90)))
            purchase = _purchase(product, category, writer.customer.home_store)
            writer.add(later, purchase=purchase)


def _life(
    writer: _Writer, rng: np.random.Generator, days: Sequence[date], settings: HabitSettings
) -> None:
    if rng.random() < settings.birthday_known:
        birthday = date(1990, int(rng.integers(1, 13)), int(rng.integers(1, 29)))
        told = _app_time(rng, days[0])
        event = profile_pb2.LifeEvent(
            kind=profile_pb2.LIFE_EVENT_KIND_BIRTHDAY,
            time=timestamp(datetime(birthday.year, birthday.month, birthday.day, tzinfo=UTC)),
        )
        writer.add(told, life_event=event)
    chances = (
        (profile_pb2.LIFE_EVENT_KIND_MOVED, settings.moved),
        (profile_pb2.LIFE_EVENT_KIND_MARRIED, settings.married),
        (profile_pb2.LIFE_EVENT_KIND_NEW_BABY, settings.new_baby),
    )
    for kind, chance in chances:
        if rng.random() >= chance:
            continue
        at = _app_time(rng, days[int(rng.integers(len(days)))])
        event = profile_pb2.LifeEvent(kind=kind, time=timestamp(at))
        if kind == profile_pb2.LIFE_EVENT_KIND_MOVED:
            event.store_id = str(rng.choice([s for s in STORES if s != writer.customer.home_store]))
        writer.add(at, life_event=event)
    if rng.random() < settings.support_contacts:
        at = _app_time(rng, days[int(rng.integers(len(days)))])
        contact = profile_pb2.SupportContact(
            sentiment=round(float(rng.uniform(-1.0, 0.6)), 2),
            topic="delivery",
            channel=common_pb2.CHANNEL_EMAIL,
        )
        writer.add(at, support_contact=contact)


def timeline(
    customers: Sequence[Customer],
    first: date,
    days: int,
    stores: StoreLocations,
    products: Sequence[tuple[str, str]],
    settings: HabitSettings,
    seed: int,
    prefix: str,
) -> list[Happening]:
    """Every customer's events from `first` on for `days` days, in time order.

    `products` are the (product, category) pairs customers look at in the app.
    """
    span = [first + timedelta(days=n) for n in range(days)]
    happenings: list[Happening] = []
    for number, customer in enumerate(customers):
        rng = np.random.default_rng([seed, number])
        writer = _Writer(customer, prefix)
        _visits(writer, rng, span, stores, settings)
        if rng.random() < settings.coffee_regulars:
            _coffee(writer, rng, span, settings)
        if products:
            _views(writer, rng, span, settings, products)
        _life(writer, rng, span, settings)
        happenings.extend(writer.happenings)
    return sorted(happenings, key=lambda h: (h.at, h.event.event_id))
