"""Real-time aggregate maths: the updates an event makes, and how stored values read back."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
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
    OfferHistory,
    OfferResponse,
    OfferResponseKind,
    Purchase,
    Rfm,
    SupportContact,
)
from emma.profile.record import (
    CATEGORY,
    HOUR,
    IMPRESSIONS,
    OFFER,
    PRODUCT,
    RESPONSES,
    SCALE,
    STORE,
    OfferRecord,
    Record,
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

# Folded weights travel to the script as integers in these units.
WEIGHT_UNITS = 1_000_000

# The updates an event makes: ["d", field, weight, t] add to a decayed value,
# ["m", field, t] keep the latest time, ["i", field, amount] add to a counter,
# ["o", offer, kind, t] offer history, ["l", kind, t, store] a life event. A batch's
# updates are folded (fold) into what lua/record.lua applies atomically.
Op = list[Any]


def epoch(time: datetime) -> float:
    return time.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """How much a value counts after `elapsed_s` seconds: 1/2 per half-life."""
    return float(0.5 ** (elapsed_s / half_life_s))


# --- forward decay ------------------------------------------------------------------------
# A weight w seen at time t is stored as w * 2^((t - E) / half-life) relative to a landmark
# E, in fixed point. Sums of such values are order-independent, and a value read at `now`
# is the stored one times 2^(-(now - E) / half-life): exactly the exponentially decayed sum.


def forward(weight: float, at: float, landmark: float, half_life_s: float) -> int:
    """The fixed-point contribution of `weight` observed at `at` (lua/record.lua's maths)."""
    return _round(weight * SCALE * 2 ** ((at - landmark) / half_life_s))


def rebase(value: int, landmark: float, new_landmark: float, half_life_s: float) -> int:
    """A stored value relative to `new_landmark` instead of `landmark`."""
    return _round(value * 2 ** ((landmark - new_landmark) / half_life_s))


def read(value: int, landmark: float, now: float, half_life_s: float) -> float:
    """The decayed value as of `now`; a landmark ahead of `now` never grows it."""
    return value / SCALE * decay_factor(max(0.0, now - landmark), half_life_s)


def _round(x: float) -> int:
    # As Lua's math.floor(x + 0.5), so both sides agree to the unit.
    return math.floor(x + 0.5)


# --- event -> updates ---------------------------------------------------------------------


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_hour(time: datetime, zone: str) -> int:
    return local_hour_at(time.timestamp(), zone)


def local_hour_at(seconds: float, zone: str) -> int:
    """The hour of the local day in `zone` at epoch `seconds`."""
    return _local_hour(math.floor(seconds / QUARTER_HOUR_S), zone)


def fixed_point(amount: float) -> int:
    """An amount in the thousandths the record stores."""
    return _round(amount * SCALE)


QUARTER_HOUR_S = 900


@lru_cache(maxsize=65_536)
def _local_hour(quarter: int, zone: str) -> int:
    # Zone offsets (and their changes) are whole quarter hours, so a quarter hour of UTC
    # falls in one local hour: converting its start once serves every event in it.
    return datetime.fromtimestamp(quarter * QUARTER_HOUR_S, UTC).astimezone(_zone(zone)).hour


def event_ops(event: Event, default_zone: str) -> list[Op]:
    """The aggregate updates one event makes."""
    t = epoch(event.time)
    hour = local_hour(event.time, event.zone or default_zone)
    ops: list[Op] = [["d", f"{HOUR}{hour}", 1.0, t]]
    payload = event.payload
    if isinstance(payload, Purchase):
        ops += [["m", "P", t], ["i", "N", 1], ["i", "M", fixed_point(payload.total)]]
        for item in payload.items:
            if item.category:
                ops.append(["d", CATEGORY + item.category, PURCHASE_LINE_WEIGHT, t])
            if item.product_id:
                ops.append(["d", PRODUCT + item.product_id, PURCHASE_LINE_WEIGHT, t])
        if payload.store_id:
            ops.append(["d", STORE + payload.store_id, 1.0, t])
    elif isinstance(payload, Interaction):
        weight = INTERACTION_WEIGHTS.get(payload.kind, 0.0)
        if payload.category:
            ops.append(["d", CATEGORY + payload.category, weight, t])
        if payload.product_id:
            ops.append(["d", PRODUCT + payload.product_id, weight, t])
    elif isinstance(payload, OfferResponse):
        ops.append(["o", payload.offer_id, int(payload.kind), t])
        if payload.channel != Channel.UNSPECIFIED:
            channel = int(payload.channel)
            if payload.kind == OfferResponseKind.SHOWN:
                ops.append(["d", f"{IMPRESSIONS}{channel}", 1.0, t])
            elif payload.kind in (OfferResponseKind.CLICKED, OfferResponseKind.REDEEMED):
                ops.append(["d", f"{RESPONSES}{channel}", 1.0, t])
    elif isinstance(payload, SupportContact):
        ops += [["d", "S", payload.sentiment, t], ["d", "W", 1.0, t]]
    elif isinstance(payload, LifeEvent):
        life_t = epoch(payload.time) if payload.time is not None else t
        ops.append(["l", payload.kind.name.lower(), life_t, payload.store_id])
    return ops


def fold(
    events: Iterable[tuple[float, list[Op]]], now: float, half_life_s: float
) -> dict[str, Any]:
    """One customer's updates of a batch, one per field: what lua/record.lua applies.

    `events` pairs each event's time with its updates. Decayed weights are summed relative
    to the batch's latest time `t`, so the script scales each field once; future-dated
    events (clock drift) decay as if they happened now.
    """
    events = [(min(at, now), ops) for at, ops in events]
    t = max((at for at, _ in events), default=now)
    decayed: dict[str, float] = {}
    latest: dict[str, float] = {}
    counters: dict[str, int] = {}
    offers: dict[str, list[float]] = {}
    life: list[list[Any]] = []
    for at, ops in events:
        factor = decay_factor(t - at, half_life_s)
        for op in ops:
            kind = op[0]
            if kind == "d":
                decayed[op[1]] = decayed.get(op[1], 0.0) + op[2] * factor
            elif kind == "m":
                latest[op[1]] = max(latest.get(op[1], op[2]), op[2])
            elif kind == "i":
                counters[op[1]] = counters.get(op[1], 0) + op[2]
            elif kind == "o":
                record = offers.setdefault(op[1], [0.0, 0.0, 0.0, 0.0, 0.0])
                record[op[2] - 1] = max(record[op[2] - 1], op[3])
                if op[2] == OfferResponseKind.DISMISSED:
                    record[4] += factor
            else:
                life.append(op[1:])
    # Flat lists of integers (weights in millionths, whole seconds): what Redis's Lua
    # decodes fastest (every nested list is a table to build).
    return {
        "t": t,
        "d": [x for field, w in sorted(decayed.items()) for x in (field, round(w * WEIGHT_UNITS))],
        "m": [x for field, at in sorted(latest.items()) for x in (field, math.floor(at))],
        "i": [x for field, amount in sorted(counters.items()) for x in (field, amount)],
        "o": [
            x
            for offer, record in sorted(offers.items())
            for x in (
                offer,
                *(math.floor(at) for at in record[:4]),
                round(record[4] * WEIGHT_UNITS),
            )
        ],
        "l": [x for entry in life for x in entry],
    }


def touched(update: Mapping[str, Any]) -> list[str]:
    """The record fields a folded update reads (lua/record.lua reads the same)."""
    fields = {field for family in ("d", "m", "i") for field in update[family][::2]}
    fields.update(OFFER + offer for offer in update["o"][::6])
    return sorted(fields)


# --- stored values -> profile parts -------------------------------------------------------


class Reader:
    """Reads a record's decayed values as of one moment."""

    def __init__(self, record: Record, now: float, half_life_s: float) -> None:
        self.record = record
        self.now = now
        self.half_life_s = half_life_s
        self.landmark = record.number("E", now)
        # Every value decays by the same factor (read's maths, computed once).
        self._per_unit = decay_factor(max(0.0, now - self.landmark), half_life_s)
        # Grouped once: a profile read asks for six families.
        self._families: dict[str, dict[str, int]] = {}
        for field, value in record.decayed.items():
            if len(field) > 1:
                self._families.setdefault(field[0], {})[field[1:]] = value

    def value(self, stored: int) -> float:
        return stored / SCALE * self._per_unit

    def family(self, letter: str) -> dict[str, float]:
        factor = self._per_unit
        return {key: v / SCALE * factor for key, v in self._families.get(letter, {}).items()}


def ranked(scores: Mapping[str, float]) -> tuple[Affinity, ...]:
    """Highest first (ties by key, so the order is stable)."""
    return tuple(Affinity(k, s) for k, s in sorted(scores.items(), key=lambda p: (-p[1], p[0])))


def responsiveness(impressions: float, responses: float) -> float:
    """Smoothed response rate in [0, 1]; 0 when nothing was shown or answered."""
    if impressions <= 0 and responses <= 0:
        return 0.0
    # A response implies an impression even when the SHOWN event never arrived.
    shown = max(impressions, responses)
    prior = RESPONSE_PRIOR_RATE * RESPONSE_PRIOR_STRENGTH
    return min(1.0, (responses + prior) / (shown + RESPONSE_PRIOR_STRENGTH))


def channel_stats(reader: Reader) -> tuple[ChannelStats, ...]:
    shown, answered = reader.family(IMPRESSIONS), reader.family(RESPONSES)
    stats = []
    for number in sorted({int(key) for key in (*shown, *answered)}):
        impressions, responses = shown.get(str(number), 0.0), answered.get(str(number), 0.0)
        stats.append(
            ChannelStats(
                Channel(number), impressions, responses, responsiveness(impressions, responses)
            )
        )
    return tuple(stats)


def active_hours(reader: Reader) -> tuple[float, ...]:
    hours = [0.0] * 24
    for hour, value in reader.family(HOUR).items():
        hours[int(hour)] = value
    return tuple(hours)


def sentiment(record: Record) -> float:
    """The decay-weighted mean sentiment, in [-1, 1]; 0 when nothing is known."""
    weight = record.decayed.get("W", 0)
    if weight <= 0:
        return 0.0
    return max(-1.0, min(1.0, record.decayed.get("S", 0) / weight))


def rfm(record: Record) -> Rfm:
    last = record.time("P")
    return Rfm(
        last_purchase_at=None if last is None else from_epoch(last),
        purchase_count=int(record.number("N")),
        total_spend=record.number("M") / SCALE,
    )


def _when(seconds: int) -> datetime | None:
    return from_epoch(seconds) if seconds > 0 else None


def offer_history(reader: Reader) -> tuple[OfferHistory, ...]:
    """Most recent activity first (ties by offer id)."""
    offers = sorted(reader.record.offers.items(), key=lambda p: (-p[1].recency, p[0]))
    return tuple(_offer(offer, rec, reader) for offer, rec in offers)


def _offer(offer_id: str, rec: OfferRecord, reader: Reader) -> OfferHistory:
    return OfferHistory(
        offer_id,
        _when(rec.shown),
        _when(rec.clicked),
        _when(rec.redeemed),
        _when(rec.dismissed),
        reader.value(rec.dismissals),
    )


def life_events(entries: list[str]) -> tuple[LifeEventRecord, ...]:
    """Entries `kind|time|store` as lua/record.lua keeps them, newest first."""
    records = []
    for entry in entries:
        kind, time, store = entry.split("|", 2)
        records.append(LifeEventRecord(LifeEventKind[kind.upper()], from_epoch(float(time)), store))
    return tuple(sorted(records, key=lambda r: r.time, reverse=True)[:MAX_LIFE_EVENTS])


def home_store(record: Record, reader: Reader) -> str:
    """The store named by the latest move, else the store visited most (decayed)."""
    moved_to = record.scalars.get("H", "")
    if moved_to:
        return moved_to
    visits = ranked(reader.family(STORE))
    return visits[0].key if visits else ""


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
