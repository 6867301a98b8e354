"""The built-in trigger kinds: one small pure function each, from an event to what it causes."""

from __future__ import annotations

import dataclasses
import zoneinfo
from datetime import UTC, date, datetime, timedelta

from emma.profile.v1 import profile_pb2
from emma.runtime.privacy import pseudonymise
from emma.triggers.rules import Rule

_LIFE_EVENTS = {
    profile_pb2.LIFE_EVENT_KIND_MOVED: "moved",
    profile_pb2.LIFE_EVENT_KIND_MARRIED: "married",
    profile_pb2.LIFE_EVENT_KIND_NEW_BABY: "new_baby",
    profile_pb2.LIFE_EVENT_KIND_BIRTHDAY: "birthday",
    profile_pb2.LIFE_EVENT_KIND_ANNIVERSARY: "anniversary",
}
_LOOKED_AT = (profile_pb2.INTERACTION_KIND_VIEW, profile_pb2.INTERACTION_KIND_ADD_TO_CART)
# Two purchases of a product closer than this are one shopping trip, not an interval.
MIN_INTERVAL = timedelta(hours=20)
# Weight of the newest interval in the running estimate.
INTERVAL_WEIGHT = 0.5


@dataclasses.dataclass(frozen=True)
class Firing:
    """A rule that fired for a customer; the engine decides for it and publishes the action."""

    rule: str
    # The identifier the triggering event named: (IdentifierKind number, value).
    customer: tuple[int, str]
    trigger_event_id: str
    # When the moment happened (the event's time, or the timer's due time).
    at: datetime
    store_id: str = ""
    location: tuple[float, float] | None = None
    categories: tuple[str, ...] = ()
    # A yearly moment's day ("MM-DD", as given: 02-29 stays 02-29): when its timer is taken,
    # the timer is armed again for the next year.
    day: str = ""
    # The year of a yearly moment: deduplicated per customer, rule, moment and year.
    year: int = 0
    # Which yearly moment: the life event (birthday, anniversary). A rule may cover both, and
    # each day is honoured every year.
    moment: str = ""
    # When the batch of events that led here was recorded (ms since the epoch). An erasure
    # of the identifier recorded at or after it voids the firing: nothing is scheduled or
    # published for it, even when the erasure is processed while it is on its way.
    recorded_ms: int = 0


@dataclasses.dataclass(frozen=True)
class Timer:
    """A firing due later; a newer timer with the same key replaces it."""

    key: str
    due: datetime
    firing: Firing


def customer_of(event: profile_pb2.Event) -> tuple[int, str]:
    return int(event.customer.kind), event.customer.value


def timer_key(rule: Rule, event: profile_pb2.Event, discriminator: str = "") -> str:
    """Stable per rule, customer and discriminator; holds a pseudonym, not the identifier."""
    kind, value = customer_of(event)
    return f"{rule.name}|{pseudonymise(f'{kind}:{value}')}|{discriminator}"


def timer_identifier(key: str) -> str:
    """The identifier pseudonym a timer key (timer_key) holds."""
    return key.split("|")[1]


def timer_discriminator(key: str) -> str:
    """The discriminator a timer key (timer_key) holds; a retry's key has it too."""
    parts = key.split("|")
    return parts[2] if len(parts) > 2 else ""


def geofence(
    rule: Rule, event: profile_pb2.Event, at: datetime, store_id: str, in_store: bool, open_: bool
) -> Firing | None:
    """A location ping inside an open store's geofence (the context service tells which)."""
    if not (store_id and in_store and open_):
        return None
    location = event.location.location
    return Firing(
        rule.name,
        customer_of(event),
        event.event_id,
        at,
        store_id=store_id,
        location=(location.latitude, location.longitude),
    )


def life_event(rule: Rule, event: profile_pb2.Event, at: datetime) -> Firing | None:
    """Moved, married, new baby: a moved customer is welcomed at the new home store."""
    name = _LIFE_EVENTS.get(event.life_event.kind, "")
    if name not in rule.events:
        return None
    store = event.life_event.store_id if name == "moved" else ""
    return Firing(rule.name, customer_of(event), event.event_id, at, store_id=store)


def _on(month: int, day: int, year: int) -> date:
    """An anniversary's date in `year`; 29 February falls on 28 February in other years."""
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, 2, 28)


def _next_occurrence(day: date, today: date) -> date:
    """This year's (or, if past, next year's) date of an anniversary."""
    this_year = _on(day.month, day.day, today.year)
    return this_year if this_year >= today else _on(day.month, day.day, today.year + 1)


def _send_time(rule: Rule, day: date, tz: zoneinfo.ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, rule.send_hour, tzinfo=tz).astimezone(UTC)


def anniversary(
    rule: Rule, event: profile_pb2.Event, at: datetime, now: datetime, zone: str
) -> list[Firing | Timer]:
    """A birthday or customer anniversary: a gesture on the day, at the rule's send hour,
    every year.

    The event's date is the day itself (any year); on the day the rule fires at once and
    arms next year's timer, otherwise a timer waits for the day's send hour in the
    customer's time zone (and is armed again for the next year when it is taken).
    """
    name = _LIFE_EVENTS.get(event.life_event.kind, "")
    if name not in rule.events:
        return []
    tz = zoneinfo.ZoneInfo(zone)
    day = (
        event.life_event.time.ToDatetime(tzinfo=UTC) if event.life_event.HasField("time") else at
    ).astimezone(tz)
    today = now.astimezone(tz).date()
    occurrence = _next_occurrence(day.date(), today)
    firing = Firing(
        rule.name,
        customer_of(event),
        event.event_id,
        at,
        day=f"{day:%m-%d}",
        year=occurrence.year,
        moment=name,
    )
    key = timer_key(rule, event, name)
    if occurrence == today:
        now_firing = dataclasses.replace(firing, at=max(at, now))
        return [now_firing, next_year(rule, key, now_firing, now, zone)]
    due = _send_time(rule, occurrence, tz)
    return [Timer(key, due, dataclasses.replace(firing, at=due))]


def next_year(rule: Rule, key: str, firing: Firing, now: datetime, zone: str) -> Timer:
    """The timer of a yearly moment's next year: the first year after the firing's whose send
    time is still ahead (years missed while nothing ran are not made up)."""
    tz = zoneinfo.ZoneInfo(zone)
    month, day = (int(part) for part in firing.day.split("-"))
    year = max(firing.year + 1, now.astimezone(tz).year - 1)
    while (due := _send_time(rule, _on(month, day, year), tz)) <= now:
        year += 1
    return Timer(key, due, dataclasses.replace(firing, at=due, year=year))


def yearly(rule: Rule, firing: Firing, zone: str, key: str) -> Firing:
    """An anniversary timer stored in an older format recurs and deduplicates as a new one:
    without its day, its due date in the zone is the day; without its moment, its key names
    the life event (timer_key's discriminator)."""
    if rule.kind != "anniversary":
        return firing
    if not firing.day and not firing.year:
        local = firing.at.astimezone(zoneinfo.ZoneInfo(zone))
        firing = dataclasses.replace(firing, day=f"{local:%m-%d}", year=local.year)
    if not firing.moment:
        firing = dataclasses.replace(firing, moment=timer_discriminator(key))
    return firing


@dataclasses.dataclass(frozen=True)
class History:
    """A customer's purchases of one product: the last, the interval estimate, the count."""

    last: float
    interval: float = 0.0
    count: int = 1

    def encode(self) -> str:
        return f"{self.last:.0f},{self.interval:.0f},{self.count}"

    @staticmethod
    def decode(text: str) -> History:
        last, interval, count = text.split(",")
        return History(float(last), float(interval), int(count))


def replenished(old: History | None, at: datetime) -> History:
    """The history after a purchase at `at`; an out-of-order or same-trip purchase changes
    the count only when it is a new trip."""
    t = at.timestamp()
    if old is None:
        return History(t)
    gap = t - old.last
    if gap < MIN_INTERVAL.total_seconds():
        return old
    interval = (
        gap if old.interval == 0 else (1 - INTERVAL_WEIGHT) * old.interval + (INTERVAL_WEIGHT * gap)
    )
    return History(t, interval, old.count + 1)


def replenishment(
    rule: Rule, event: profile_pb2.Event, at: datetime, histories: dict[str, History]
) -> list[Timer]:
    """After a purchase of a product bought regularly: a reminder `lead` before it is due.

    `histories` maps the purchase's products (of the rule's categories) to their updated
    histories; each product with at least `min_purchases` purchases gets a timer.
    """
    timers = []
    categories = {item.product_id: item.category for item in event.purchase.items}
    for product, history in histories.items():
        if history.count < rule.min_purchases or history.interval <= 0:
            continue
        due = datetime.fromtimestamp(history.last + history.interval, UTC) - rule.lead
        firing = Firing(
            rule.name,
            customer_of(event),
            event.event_id,
            due,
            categories=(categories.get(product, ""),) if categories.get(product) else (),
        )
        timers.append(Timer(timer_key(rule, event, product), due, firing))
    return timers


def replenishable(rule: Rule, event: profile_pb2.Event) -> list[str]:
    """The purchase's products the rule watches (its categories; every product when none)."""
    return sorted(
        {
            item.product_id
            for item in event.purchase.items
            if item.product_id and (not rule.categories or item.category in rule.categories)
        }
    )


def viewed(rule: Rule, event: profile_pb2.Event, at: datetime) -> Timer | None:
    """A product looked at: a reminder `after` later, unless it is bought meanwhile."""
    interaction = event.interaction
    if interaction.kind not in _LOOKED_AT or not interaction.product_id:
        return None
    if rule.categories and interaction.category not in rule.categories:
        return None
    due = at + rule.after
    firing = Firing(
        rule.name,
        customer_of(event),
        event.event_id,
        due,
        categories=(interaction.category,) if interaction.category else (),
    )
    return Timer(timer_key(rule, event, interaction.product_id), due, firing)


def bought(rule: Rule, event: profile_pb2.Event) -> list[str]:
    """Timer keys a purchase cancels: the bought products' viewed-not-bought reminders."""
    return [timer_key(rule, event, item.product_id) for item in event.purchase.items]


def unhappy(rule: Rule, event: profile_pb2.Event, at: datetime) -> Firing | None:
    """A support contact at or below the rule's sentiment threshold."""
    if event.support_contact.sentiment > rule.threshold:
        return None
    return Firing(rule.name, customer_of(event), event.event_id, at)
