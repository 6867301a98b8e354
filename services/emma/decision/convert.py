"""Protobuf messages to and from the decision domain; requests are validated here."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from emma.common.basket import MAX_AMOUNT, BasketLine
from emma.common.timestamps import stamp
from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2
from emma.decision.domain import (
    Channel,
    ConsentStatus,
    CustomerView,
    DecideInput,
    Moment,
    Purpose,
    QuietHours,
    Situation,
    Touchpoint,
)
from emma.decision.pipeline import Decision, Degraded
from emma.decision.v1 import decision_pb2
from emma.decision.wallet import HeldOffer
from emma.profile.v1 import profile_pb2
from emma.runtime.errors import InvalidArgument

CHANNELS: dict[common_pb2.Channel.ValueType, Channel] = {
    common_pb2.CHANNEL_IN_APP: Channel.IN_APP,
    common_pb2.CHANNEL_PUSH: Channel.PUSH,
    common_pb2.CHANNEL_EMAIL: Channel.EMAIL,
    common_pb2.CHANNEL_SMS: Channel.SMS,
    common_pb2.CHANNEL_WEB: Channel.WEB,
    common_pb2.CHANNEL_RECEIPT: Channel.RECEIPT,
    common_pb2.CHANNEL_CASHIER_PROMPT: Channel.CASHIER_PROMPT,
    common_pb2.CHANNEL_STORE_SCREEN: Channel.STORE_SCREEN,
}
CHANNEL_PROTOS = {v: k for k, v in CHANNELS.items()}
TOUCHPOINTS: dict[common_pb2.Touchpoint.ValueType, Touchpoint] = {
    common_pb2.TOUCHPOINT_APP: Touchpoint.APP,
    common_pb2.TOUCHPOINT_WEB: Touchpoint.WEB,
    common_pb2.TOUCHPOINT_POS: Touchpoint.POS,
    common_pb2.TOUCHPOINT_KIOSK: Touchpoint.KIOSK,
    common_pb2.TOUCHPOINT_CALL_CENTER: Touchpoint.CALL_CENTER,
    common_pb2.TOUCHPOINT_TRIGGER: Touchpoint.TRIGGER,
}
TOUCHPOINT_PROTOS = {v: k for k, v in TOUCHPOINTS.items()}
PURPOSES = {
    profile_pb2.PURPOSE_PERSONALISATION: Purpose.PERSONALISATION,
    profile_pb2.PURPOSE_MARKETING: Purpose.MARKETING,
    profile_pb2.PURPOSE_SERVICE: Purpose.SERVICE,
}
STATUSES = {
    profile_pb2.CONSENT_STATUS_GRANTED: ConsentStatus.GRANTED,
    profile_pb2.CONSENT_STATUS_DENIED: ConsentStatus.DENIED,
    profile_pb2.CONSENT_STATUS_WITHDRAWN: ConsentStatus.WITHDRAWN,
}
_DAYPARTS = {
    context_pb2.DAYPART_MORNING: "morning",
    context_pb2.DAYPART_LUNCH: "lunch",
    context_pb2.DAYPART_AFTERNOON: "afternoon",
    context_pb2.DAYPART_EVENING: "evening",
    context_pb2.DAYPART_NIGHT: "night",
}
_SEASONS = {
    context_pb2.SEASON_SPRING: "spring",
    context_pb2.SEASON_SUMMER: "summer",
    context_pb2.SEASON_AUTUMN: "autumn",
    context_pb2.SEASON_WINTER: "winter",
}
# The dayparts and seasons an answer can name (others read as "").
DAYPART_NAMES = frozenset(_DAYPARTS.values())
SEASON_NAMES = frozenset(_SEASONS.values())
MAX_ID_LENGTH = 256
IDENTIFIER_KINDS = frozenset(common_pb2.IdentifierKind.values())
# Most lines of a basket and entries of a moment's lists: far beyond any till's basket,
# short of what would make one decision (and its log entry) a burden.
MAX_BASKET_ITEMS = 1_000
MAX_MOMENT_ENTRIES = 1_000
# Timestamp's documented range (0001-01-01 to 9999-12-31) and Duration's (10,000 years).
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
_MAX_DURATION_SECONDS = 315_576_000_000
# The years a request may fall in: those the context service has calendars for (and far
# enough from datetime's ends for every schedule computed from it).
FIRST_YEAR, LAST_YEAR = 1900, 2100
_EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
_LATEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)


def timestamp(stamp: Timestamp, path: str) -> datetime:
    """A request's Timestamp as a datetime; InvalidArgument naming `path` when it is not a
    valid one (seconds out of range, nanos outside [0, 10^9))."""
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 10**9):
        raise InvalidArgument(path, "not a valid timestamp")
    return stamp.ToDatetime(tzinfo=UTC)


def request_time(stamp: Timestamp, path: str) -> datetime:
    """timestamp() within the years FIRST_YEAR..LAST_YEAR."""
    time = timestamp(stamp, path)
    if not _EARLIEST <= time < _LATEST:
        raise InvalidArgument(path, f"must be in the years {FIRST_YEAR}..{LAST_YEAR}")
    return time


def feedback_time(request: decision_pb2.ActivateRequest | decision_pb2.RewardRequest) -> datetime:
    """The time of an Activate or Reward; the server's clock when unset."""
    return request_time(request.time, "time") if request.HasField("time") else datetime.now(UTC)


def _budget_s(budget: Duration) -> float:
    seconds, nanos = budget.seconds, budget.nanos
    valid = (
        abs(seconds) <= _MAX_DURATION_SECONDS
        and -(10**9) < nanos < 10**9
        and (seconds == 0 or nanos == 0 or (seconds > 0) == (nanos > 0))
    )
    if not valid:
        raise InvalidArgument("budget", "not a valid duration")
    return seconds + nanos / 1e9


def decide_input(request: decision_pb2.DecideRequest, now: datetime) -> DecideInput:
    """Validates a DecideRequest; raises InvalidArgument naming the first bad field."""
    customer = request.customer
    if not customer.value.strip():
        raise InvalidArgument("customer.value", "must not be empty")
    if len(customer.value) > MAX_ID_LENGTH:
        raise InvalidArgument("customer.value", f"must be at most {MAX_ID_LENGTH} characters")
    if customer.kind == common_pb2.IDENTIFIER_KIND_UNSPECIFIED:
        raise InvalidArgument("customer.kind", "must be set (e.g. IDENTIFIER_KIND_CUSTOMER_ID)")
    if customer.kind not in IDENTIFIER_KINDS:
        raise InvalidArgument("customer.kind", f"unknown value {customer.kind}")
    touchpoint = TOUCHPOINTS.get(request.touchpoint)
    if touchpoint is None:
        raise InvalidArgument("touchpoint", "must be set (e.g. TOUCHPOINT_APP, TOUCHPOINT_POS)")
    location = None
    if request.HasField("location"):
        lat, lon = request.location.latitude, request.location.longitude
        if not (math.isfinite(lat) and -90 <= lat <= 90):
            raise InvalidArgument("location.latitude", "must be in [-90, 90]")
        if not (math.isfinite(lon) and -180 <= lon <= 180):
            raise InvalidArgument("location.longitude", "must be in [-180, 180]")
        location = (lat, lon)
    budget_s = None
    if request.HasField("budget"):
        budget = _budget_s(request.budget)
        if budget < 0:
            raise InvalidArgument("budget", "must not be negative")
        budget_s = budget or None
    allowed = set()
    for i, raw in enumerate(request.allowed_channels):
        channel = CHANNELS.get(raw)
        if channel is None:
            raise InvalidArgument(f"allowed_channels[{i}]", f"unknown or unspecified channel {raw}")
        allowed.add(channel)
    for field in ("store_id", "request_id", "device"):
        if len(getattr(request, field)) > MAX_ID_LENGTH:
            raise InvalidArgument(field, f"must be at most {MAX_ID_LENGTH} characters")
    if len(request.basket.items) > MAX_BASKET_ITEMS:
        raise InvalidArgument("basket.items", f"at most {MAX_BASKET_ITEMS} lines")
    if len(request.basket.currency) > MAX_ID_LENGTH:
        raise InvalidArgument("basket.currency", f"must be at most {MAX_ID_LENGTH} characters")
    lines = []
    for i, item in enumerate(request.basket.items):
        for field in ("product_id", "category"):
            if len(getattr(item, field)) > MAX_ID_LENGTH:
                raise InvalidArgument(
                    f"basket.items[{i}].{field}", f"must be at most {MAX_ID_LENGTH} characters"
                )
        if not (math.isfinite(item.quantity) and item.quantity >= 0):
            raise InvalidArgument(f"basket.items[{i}].quantity", "must be >= 0")
        if not (math.isfinite(item.amount) and abs(item.amount) <= MAX_AMOUNT):
            raise InvalidArgument(
                f"basket.items[{i}].amount", f"must be a finite number within ±{MAX_AMOUNT:g}"
            )
        lines.append(BasketLine(item.product_id, item.category, item.quantity, item.amount))
    when = (
        request_time(request.request_time, "request_time")
        if request.HasField("request_time")
        else now
    )
    return DecideInput(
        customer_kind=customer.kind,
        customer_value=customer.value,
        touchpoint=touchpoint,
        request_time=when,
        store_id=request.store_id,
        location=location,
        basket=tuple(lines),
        currency=request.basket.currency,
        budget_s=budget_s,
        allowed_channels=frozenset(allowed),
        deferred_activation=request.deferred_activation,
        request_id=request.request_id,
        device=request.device,
        moment=moment(request),
    )


def moment(request: decision_pb2.DecideRequest) -> Moment | None:
    """The request's proactive moment; only the trigger touchpoint may carry one."""
    if not request.HasField("moment"):
        return None
    if request.touchpoint != common_pb2.TOUCHPOINT_TRIGGER:
        raise InvalidArgument("moment", "only a TOUCHPOINT_TRIGGER request carries a moment")
    given = request.moment
    if not given.rule.strip():
        raise InvalidArgument("moment.rule", "must not be empty")
    for field, value in (("rule", given.rule), ("kind", given.kind)):
        if len(value) > MAX_ID_LENGTH:
            raise InvalidArgument(f"moment.{field}", f"must be at most {MAX_ID_LENGTH} characters")
    for field in ("offer_ids", "categories"):
        values = getattr(given, field)
        if len(values) > MAX_MOMENT_ENTRIES:
            raise InvalidArgument(f"moment.{field}", f"at most {MAX_MOMENT_ENTRIES} entries")
        for i, value in enumerate(values):
            if len(value) > MAX_ID_LENGTH:
                raise InvalidArgument(
                    f"moment.{field}[{i}]", f"must be at most {MAX_ID_LENGTH} characters"
                )
    return Moment(
        rule=given.rule,
        kind=given.kind,
        trigger_event_id=given.trigger_event_id[:MAX_ID_LENGTH],
        offer_ids=frozenset(given.offer_ids),
        categories=frozenset(given.categories),
        store_offers=given.store_offers,
    )


def _wallet(profile: profile_pb2.Profile) -> tuple[HeldOffer, ...]:
    return tuple(
        HeldOffer(
            offer_id=entry.offer_id,
            event_id=entry.event_id,
            channel=CHANNELS.get(entry.channel),
            expires_at=entry.expires_at.ToDatetime(tzinfo=UTC),
        )
        for entry in profile.wallet
        if entry.state == profile_pb2.WALLET_OFFER_STATE_OPEN and entry.offer_id
    )


def profile_request(request: DecideInput) -> profile_pb2.GetProfileRequest:
    return profile_pb2.GetProfileRequest(
        customer=common_pb2.CustomerRef(
            kind=request.customer_kind,  # type: ignore[arg-type]
            value=request.customer_value,
        )
    )


def resolve_request(request: DecideInput) -> context_pb2.ResolveRequest:
    message = context_pb2.ResolveRequest(
        store_id=request.store_id,
        touchpoint=TOUCHPOINT_PROTOS[request.touchpoint],
        device=request.device,
    )
    message.time.FromDatetime(request.request_time)
    if request.location is not None:
        message.location.latitude, message.location.longitude = request.location
    for line in request.basket:
        message.basket.items.add(
            product_id=line.product_id,
            category=line.category,
            quantity=line.quantity,
            amount=line.amount,
        )
    message.basket.currency = request.currency
    return message


def ranked_affinities(scores: Iterable[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """Affinities as the pipeline ranks them: highest first, ties in the profile's order."""
    return tuple(sorted(scores, key=lambda affinity: -affinity[1]))


def customer_view(response: profile_pb2.GetProfileResponse, now: datetime) -> CustomerView:
    """What the decision uses of a profile; an unknown customer is available but not found."""
    if not response.found:
        return CustomerView(available=True, found=False)
    profile = response.profile
    consents = {}
    for state in profile.consents:
        purpose, status = PURPOSES.get(state.purpose), STATUSES.get(state.status)
        if purpose is None or status is None:
            continue
        channel = CHANNELS.get(state.channel)  # None: every channel
        consents[(purpose, channel)] = status
    days_since = None
    if profile.rfm.HasField("last_purchase_at"):
        last = profile.rfm.last_purchase_at.ToDatetime(tzinfo=UTC)
        days_since = max(0.0, (now - last).total_seconds() / 86400)
    preferences = profile.preferences
    quiet = preferences.quiet_hours
    dismissed = {
        entry.offer_id: entry.last_dismissed.ToDatetime(tzinfo=UTC)
        for entry in profile.offer_history
        if entry.offer_id and entry.HasField("last_dismissed")
    }
    return CustomerView(
        available=True,
        found=True,
        consents=consents,
        disliked_products=frozenset(preferences.disliked_products),
        disliked_categories=frozenset(preferences.disliked_categories),
        liked_products=frozenset(preferences.liked_products),
        liked_categories=frozenset(preferences.liked_categories),
        category_affinities=ranked_affinities(
            (a.key, a.score) for a in profile.category_affinities
        ),
        days_since_purchase=days_since,
        purchase_count=profile.rfm.purchase_count,
        total_spend=profile.rfm.total_spend,
        segments=tuple(profile.segments),
        channel_responsiveness={
            CHANNELS[c.channel]: c.responsiveness for c in profile.channels if c.channel in CHANNELS
        },
        sentiment=profile.sentiment,
        home_store_id=profile.home_store_id,
        customer_id=profile.customer_id,
        quiet_hours=(
            QuietHours(quiet.start_minute % 1440, quiet.end_minute % 1440)
            if preferences.HasField("quiet_hours") and quiet.enabled
            else None
        ),
        active_hours=tuple(profile.active_hours) if len(profile.active_hours) == 24 else (),
        last_dismissed=dismissed,
        wallet=_wallet(profile),
    )


def situation(response: context_pb2.ResolveResponse, request: DecideInput) -> Situation:
    context = response.context
    try:
        local = datetime.fromisoformat(context.local_time)
    except ValueError:
        local = request.request_time
    features: list[tuple[str, float | str]] = []
    for feature in context.features:
        kind = feature.WhichOneof("value")
        if kind == "number":
            features.append((feature.name, feature.number))
        elif kind == "text":
            features.append((feature.name, feature.text))
    return Situation(
        resolved=True,
        local_time=local,
        daypart=_DAYPARTS.get(context.daypart, ""),
        season=_SEASONS.get(context.season, ""),
        weekday=context.weekday,
        retail_seasons=frozenset(context.retail_seasons),
        store_id=context.store.store_id or request.store_id,
        country=context.country.upper(),
        region=context.region.upper(),
        time_zone=context.time_zone,
        features=tuple(features),
    )


_DEGRADED = {
    Degraded.PROFILE: decision_pb2.DEGRADED_PART_PROFILE,
    Degraded.CONTEXT: decision_pb2.DEGRADED_PART_CONTEXT,
    Degraded.MODEL: decision_pb2.DEGRADED_PART_MODEL,
    Degraded.DECISION_LOG: decision_pb2.DEGRADED_PART_DECISION_LOG,
    Degraded.POLICY: decision_pb2.DEGRADED_PART_POLICY,
    Degraded.FALLBACK: decision_pb2.DEGRADED_PART_FALLBACK,
}


def decide_response(decision: Decision) -> decision_pb2.DecideResponse:
    offer = decision.offer
    response = decision_pb2.DecideResponse(
        event_id=decision.event_id,
        offer=decision_pb2.Offer(
            offer_id=offer.offer_id,
            title=offer.title,
            description=offer.description,
            category=offer.category,
            payload=dict(offer.payload),
        ),
        channel=(
            CHANNEL_PROTOS[decision.channel] if decision.channel else common_pb2.CHANNEL_UNSPECIFIED
        ),
        send_at=stamp(decision.send_at),
        probability=decision.probability,
        model_version=decision.model_version,
        reasons=[decision_pb2.Reason(code=c, detail=d) for c, d in decision.reasons],
        degraded=[_DEGRADED[d] for d in decision.degraded],
        trace_id=decision.trace_id,
        fallback=decision.fallback,
        candidate_count=decision.candidate_count,
    )
    for held in decision.open_offers:
        response.open_offers.add(
            offer_id=held.offer_id,
            title=held.title,
            event_id=held.event_id,
            channel=(
                CHANNEL_PROTOS[held.channel] if held.channel else common_pb2.CHANNEL_UNSPECIFIED
            ),
            expires_at=stamp(held.expires_at),
        )
    return response


def event_id_of(event_id: str) -> str:
    """Validates an event id from Activate or Reward."""
    if not event_id.strip():
        raise InvalidArgument("event_id", "must not be empty")
    if len(event_id) > MAX_ID_LENGTH:
        raise InvalidArgument("event_id", f"must be at most {MAX_ID_LENGTH} characters")
    return event_id


def reward_value(value: float) -> float:
    if not math.isfinite(value):
        raise InvalidArgument("value", "must be a finite number")
    return value
