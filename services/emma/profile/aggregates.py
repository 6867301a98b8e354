"""Real-time aggregate maths: which updates an event makes, and how stored values read back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from emma.profile.model import (
    Affinity,
    Channel,
    ChannelStats,
    Event,
    Interaction,
    InteractionKind,
    LifeEvent,
    LifeEventKind,
    LifeEventRecord,
    OfferResponse,
    OfferResponseKind,
    Purchase,
    Rfm,
    SupportContact,
)

# Affinity weights per signal: a purchase says far more than a glance.
PURCHASE_LINE_WEIGHT = 1.0
INTERACTION_WEIGHTS: Mapping[InteractionKind, float] = {
    InteractionKind.VIEW: 0.1,
    InteractionKind.CLICK: 0.25,
    InteractionKind.ADD_TO_CART: 0.5,
}
# Responsiveness is a Beta-smoothed rate: few impressions pull it towards the prior.
RESPONSE_PRIOR_RATE = 0.05
RESPONSE_PRIOR_STRENGTH = 5.0
MAX_LIFE_EVENTS = 10
NEW_CUSTOMER_DAYS = 30
LOYAL_MIN_PURCHASES = 5
LOYAL_WITHIN_DAYS = 60
LAPSED_AFTER_DAYS = 90
UNHAPPY_SENTIMENT = -0.3

# Writes are expressed as small operations (`Op`) that the per-customer Lua script in
# scripts.py applies atomically; `Decayed.add` is the reference of the script's maths.
# An update for the script: ["dec", key, field, [weights], t] | ["rfm", t, amount]
# | ["max", key, field, t] | ["life", kind, t, store_id]. Keys name parts of CustomerKeys.
Op = list[object]


def epoch(time: datetime) -> float:
    return time.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """How much a value counts after `elapsed_s` seconds: 1/2 per half-life."""
    return float(0.5 ** (elapsed_s / half_life_s))


@dataclasses.dataclass(frozen=True)
class Decayed:
    """Exponentially decaying values sharing one reference time (epoch seconds)."""

    values: tuple[float, ...]
    at: float

    def add(self, weights: Iterable[float], at: float, half_life_s: float) -> Decayed:
        """Adds weights observed at `at`; order of additions does not change the result."""
        weights = tuple(weights)
        if at >= self.at:
            factor = decay_factor(at - self.at, half_life_s)
            return Decayed(
                tuple(v * factor + w for v, w in zip(self.values, weights, strict=True)), at
            )
        factor = decay_factor(self.at - at, half_life_s)
        return Decayed(
            tuple(v + w * factor for v, w in zip(self.values, weights, strict=True)), self.at
        )

    def values_at(self, now: float, half_life_s: float) -> tuple[float, ...]:
        """The values as of `now`; never grown for a reference time ahead of `now`."""
        factor = decay_factor(max(0.0, now - self.at), half_life_s)
        return tuple(v * factor for v in self.values)

    def encode(self) -> str:
        """`t|v1|v2...`, the format the Lua script reads and writes."""
        return "|".join(repr(x) for x in (self.at, *self.values))

    @staticmethod
    def decode(text: str) -> Decayed:
        at, *values = (float(part) for part in text.split("|"))
        return Decayed(tuple(values), at)


def local_hour(time: datetime, zone: str) -> int:
    return time.astimezone(ZoneInfo(zone)).hour


def event_ops(event: Event, default_zone: str) -> list[Op]:
    """The aggregate updates one event makes."""
    t = epoch(event.time)
    hour = local_hour(event.time, event.zone or default_zone)
    ops: list[Op] = [["dec", "hours", str(hour), [1.0], t], ["max", "profile", "last_event_at", t]]
    payload = event.payload
    if isinstance(payload, Purchase):
        ops.append(["rfm", t, payload.total])
        for item in payload.items:
            if item.category:
                ops.append(["dec", "cat", item.category, [PURCHASE_LINE_WEIGHT], t])
            if item.product_id:
                ops.append(["dec", "prod", item.product_id, [PURCHASE_LINE_WEIGHT], t])
        if payload.store_id:
            ops.append(["dec", "stores", payload.store_id, [1.0], t])
    elif isinstance(payload, Interaction):
        weight = INTERACTION_WEIGHTS.get(payload.kind, 0.0)
        if payload.category:
            ops.append(["dec", "cat", payload.category, [weight], t])
        if payload.product_id:
            ops.append(["dec", "prod", payload.product_id, [weight], t])
    elif isinstance(payload, OfferResponse):
        if payload.channel != Channel.UNSPECIFIED:
            shown = 1.0 if payload.kind == OfferResponseKind.SHOWN else 0.0
            responded = (
                1.0
                if payload.kind in (OfferResponseKind.CLICKED, OfferResponseKind.REDEEMED)
                else 0.0
            )
            if shown or responded:
                ops.append(["dec", "chan", payload.channel.name.lower(), [shown, responded], t])
    elif isinstance(payload, SupportContact):
        ops.append(["dec", "profile", "sentiment", [payload.sentiment, 1.0], t])
    elif isinstance(payload, LifeEvent):
        life_t = epoch(payload.time) if payload.time is not None else t
        ops.append(["life", payload.kind.name.lower(), life_t, payload.store_id])
    return ops


def read_decayed(
    raw: Mapping[str, str], now: float, half_life_s: float
) -> dict[str, tuple[float, ...]]:
    return {key: Decayed.decode(text).values_at(now, half_life_s) for key, text in raw.items()}


def affinities(raw: Mapping[str, str], now: float, half_life_s: float) -> tuple[Affinity, ...]:
    """Decayed to `now`, highest first (ties by key, so the order is stable)."""
    scores = [(key, values[0]) for key, values in read_decayed(raw, now, half_life_s).items()]
    scores.sort(key=lambda pair: (-pair[1], pair[0]))
    return tuple(Affinity(key, score) for key, score in scores)


def responsiveness(impressions: float, responses: float) -> float:
    """Smoothed response rate in [0, 1]; 0 when nothing was shown or answered."""
    if impressions <= 0 and responses <= 0:
        return 0.0
    # A response implies an impression even when the SHOWN event never arrived.
    shown = max(impressions, responses)
    prior = RESPONSE_PRIOR_RATE * RESPONSE_PRIOR_STRENGTH
    return min(1.0, (responses + prior) / (shown + RESPONSE_PRIOR_STRENGTH))


def channel_stats(
    raw: Mapping[str, str], now: float, half_life_s: float
) -> tuple[ChannelStats, ...]:
    stats = []
    for name, (impressions, responses) in sorted(read_decayed(raw, now, half_life_s).items()):
        channel = Channel[name.upper()]
        stats.append(
            ChannelStats(channel, impressions, responses, responsiveness(impressions, responses))
        )
    return tuple(sorted(stats, key=lambda s: s.channel))


def active_hours(raw: Mapping[str, str], now: float, half_life_s: float) -> tuple[float, ...]:
    hours = [0.0] * 24
    for hour, values in read_decayed(raw, now, half_life_s).items():
        hours[int(hour)] = values[0]
    return tuple(hours)


def sentiment(raw: str | None, now: float, half_life_s: float) -> float:
    """The decay-weighted mean sentiment, in [-1, 1]; 0 when nothing is known."""
    if not raw:
        return 0.0
    total, weight = Decayed.decode(raw).values_at(now, half_life_s)
    return max(-1.0, min(1.0, total / weight)) if weight > 0 else 0.0


def life_events(items: Iterable[Mapping[str, object]]) -> tuple[LifeEventRecord, ...]:
    records = [
        LifeEventRecord(
            LifeEventKind[str(item["k"]).upper()], from_epoch(float(str(item["t"]))), str(item["s"])
        )
        for item in items
    ]
    return tuple(sorted(records, key=lambda r: r.time, reverse=True)[:MAX_LIFE_EVENTS])


def home_store(moved_to: str, stores: Mapping[str, str], now: float, half_life_s: float) -> str:
    """The store named by the latest move, else the store visited most (decayed)."""
    if moved_to:
        return moved_to
    ranked = affinities(stores, now, half_life_s)
    return ranked[0].key if ranked else ""


def segments(
    rfm: Rfm, created_at: datetime | None, sentiment_score: float, now: datetime
) -> tuple[str, ...]:
    """Coarse, explainable segments for eligibility rules."""
    found = []
    if created_at is not None and now - created_at <= timedelta(days=NEW_CUSTOMER_DAYS):
        found.append("new")
    if rfm.last_purchase_at is not None:
        since = now - rfm.last_purchase_at
        if rfm.purchase_count >= LOYAL_MIN_PURCHASES and since <= timedelta(days=LOYAL_WITHIN_DAYS):
            found.append("loyal")
        if since > timedelta(days=LAPSED_AFTER_DAYS):
            found.append("lapsed")
    if sentiment_score <= UNHAPPY_SENTIMENT:
        found.append("unhappy")
    return tuple(found)
