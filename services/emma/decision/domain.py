"""Domain values of the decision service: channels, touchpoints, request, profile and context."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from emma.common.basket import BasketLine

if TYPE_CHECKING:
    from emma.decision.wallet import HeldOffer


class Channel(enum.StrEnum):
    """How an offer reaches the customer; the values are the catalog's spelling."""

    IN_APP = "in_app"
    PUSH = "push"
    EMAIL = "email"
    SMS = "sms"
    WEB = "web"
    RECEIPT = "receipt"
    CASHIER_PROMPT = "cashier_prompt"
    STORE_SCREEN = "store_screen"


class Touchpoint(enum.StrEnum):
    APP = "app"
    WEB = "web"
    POS = "pos"
    KIOSK = "kiosk"
    CALL_CENTER = "call_center"
    TRIGGER = "trigger"


class Purpose(enum.StrEnum):
    """Consent purposes, spelled as in the catalog's `consent` field."""

    PERSONALISATION = "personalisation"
    MARKETING = "marketing"
    SERVICE = "service"


# Channels each touchpoint can deliver on right now: a till cannot send an e-mail "now"
# but can print it on the receipt; a call centre agent can only follow up in writing.
TOUCHPOINT_CHANNELS: Mapping[Touchpoint, tuple[Channel, ...]] = {
    Touchpoint.POS: (Channel.RECEIPT, Channel.CASHIER_PROMPT, Channel.STORE_SCREEN),
    Touchpoint.KIOSK: (Channel.RECEIPT, Channel.CASHIER_PROMPT, Channel.STORE_SCREEN),
    Touchpoint.APP: (Channel.IN_APP, Channel.PUSH, Channel.EMAIL, Channel.SMS),
    Touchpoint.WEB: (Channel.WEB, Channel.EMAIL),
    Touchpoint.CALL_CENTER: (Channel.EMAIL, Channel.SMS),
    Touchpoint.TRIGGER: (Channel.PUSH, Channel.EMAIL, Channel.SMS),
}

# Channels that reach out to the customer and so need marketing consent; the others
# answer the customer where they already are (the app they opened, the till they stand at).
MARKETING_CHANNELS = frozenset({Channel.PUSH, Channel.EMAIL, Channel.SMS})


@dataclasses.dataclass(frozen=True)
class Moment:
    """A trigger rule that fired (emma.triggers): the decision is restricted and logged as such."""

    rule: str
    kind: str
    trigger_event_id: str = ""
    offer_ids: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    store_offers: bool = False


@dataclasses.dataclass(frozen=True)
class DecideInput:
    """A validated Decide request."""

    customer_kind: int
    customer_value: str
    touchpoint: Touchpoint
    request_time: datetime
    store_id: str = ""
    location: tuple[float, float] | None = None
    basket: tuple[BasketLine, ...] = ()
    currency: str = ""
    # Seconds; None means the configured default.
    budget_s: float | None = None
    # Empty means every channel of the touchpoint.
    allowed_channels: frozenset[Channel] = frozenset()
    deferred_activation: bool = False
    request_id: str = ""
    device: str = ""
    # Set when the trigger engine decides for a proactive moment.
    moment: Moment | None = None


@dataclasses.dataclass(frozen=True)
class QuietHours:
    """A daily window of local time, minutes after midnight; wraps midnight when start > end."""

    start_minute: int
    end_minute: int

    def contains(self, local: datetime) -> bool:
        """Whether a local wall-clock time falls inside; an empty window (start == end) never."""
        minute = local.hour * 60 + local.minute
        if self.start_minute <= self.end_minute:
            return self.start_minute <= minute < self.end_minute
        return minute >= self.start_minute or minute < self.end_minute


class ConsentStatus(enum.Enum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


@dataclasses.dataclass(frozen=True)
class CustomerView:
    """What the decision uses of a profile; `available` is False when the profile never arrived."""

    available: bool
    found: bool = False
    # (purpose, channel or None for every channel) -> status; the ledger's effective state.
    consents: Mapping[tuple[Purpose, Channel | None], ConsentStatus] = dataclasses.field(
        default_factory=dict
    )
    disliked_products: frozenset[str] = frozenset()
    disliked_categories: frozenset[str] = frozenset()
    liked_products: frozenset[str] = frozenset()
    liked_categories: frozenset[str] = frozenset()
    # Highest first.
    category_affinities: tuple[tuple[str, float], ...] = ()
    days_since_purchase: float | None = None
    purchase_count: int = 0
    total_spend: float = 0.0
    segments: tuple[str, ...] = ()
    channel_responsiveness: Mapping[Channel, float] = dataclasses.field(default_factory=dict)
    sentiment: float = 0.0
    home_store_id: str = ""
    # The canonical id the profile resolved the request to: keys contact records (always
    # pseudonymised). Empty when the profile is unknown or was not fetched.
    customer_id: str = ""
    # The customer's explicit wishes, honoured with or without personalisation consent.
    quiet_hours: QuietHours | None = None
    # Decayed activity per local hour (24 entries, or empty when nothing is known).
    active_hours: tuple[float, ...] = ()
    # offer id -> when the customer last dismissed it (for the dismissal cool-down).
    last_dismissed: Mapping[str, datetime] = dataclasses.field(default_factory=dict)
    # Offers delivered earlier and still open (emma.decision.wallet.HeldOffer).
    wallet: tuple[HeldOffer, ...] = ()

    def consented(self, purpose: Purpose, channel: Channel | None = None) -> bool:
        """Granted for the channel, else for every channel; anything else (or nothing) is no."""
        if not self.available:
            return False
        if channel is not None and (purpose, channel) in self.consents:
            return self.consents[(purpose, channel)] is ConsentStatus.GRANTED
        return self.consents.get((purpose, None)) is ConsentStatus.GRANTED

    @property
    def personalised(self) -> bool:
        """Whether the profile may shape the decision (its features go to the model)."""
        return self.consented(Purpose.PERSONALISATION)


UNAVAILABLE_CUSTOMER = CustomerView(available=False)


@dataclasses.dataclass(frozen=True)
class Situation:
    """What the decision uses of the context; `resolved` is False for the local fallback."""

    resolved: bool
    local_time: datetime
    daypart: str
    season: str
    weekday: int
    retail_seasons: frozenset[str] = frozenset()
    store_id: str = ""
    # ISO 3166-1 alpha-2 country and ISO 3166-2 subdivision code without the country
    # ("DE", "BY"); empty when unknown (the local fallback context).
    country: str = ""
    region: str = ""
    # IANA zone of local_time, for schedules that cross a daylight-saving change.
    time_zone: str = ""
    # Context.features as-is: name -> number or text.
    features: tuple[tuple[str, float | str], ...] = ()
