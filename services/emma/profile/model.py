"""Domain objects of the profile service; they mirror the proto contract but know nothing of it."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime

from emma.common.basket import BasketLine


class IdentifierKind(enum.IntEnum):
    UNSPECIFIED = 0
    CUSTOMER_ID = 1
    LOYALTY_CARD = 2
    APP_USER_ID = 3
    EMAIL_SHA256 = 4
    DEVICE_ID = 5

    @property
    def slug(self) -> str:
        """The lower-case name used in Redis keys and stored identifiers."""
        return self.name.lower()


class Channel(enum.IntEnum):
    UNSPECIFIED = 0
    IN_APP = 1
    PUSH = 2
    EMAIL = 3
    SMS = 4
    WEB = 5
    RECEIPT = 6
    CASHIER_PROMPT = 7
    STORE_SCREEN = 8


class Purpose(enum.IntEnum):
    UNSPECIFIED = 0
    PERSONALISATION = 1
    MARKETING = 2
    SERVICE = 3


class ConsentStatus(enum.IntEnum):
    UNSPECIFIED = 0
    GRANTED = 1
    DENIED = 2
    WITHDRAWN = 3


class InteractionKind(enum.IntEnum):
    UNSPECIFIED = 0
    VIEW = 1
    CLICK = 2
    ADD_TO_CART = 3


class OfferResponseKind(enum.IntEnum):
    UNSPECIFIED = 0
    SHOWN = 1
    CLICKED = 2
    REDEEMED = 3
    DISMISSED = 4


class LifeEventKind(enum.IntEnum):
    UNSPECIFIED = 0
    MOVED = 1
    MARRIED = 2
    NEW_BABY = 3
    BIRTHDAY = 4
    ANNIVERSARY = 5


@dataclasses.dataclass(frozen=True)
class CustomerRef:
    kind: IdentifierKind
    value: str

    def encode(self) -> str:
        """`<kind slug>:<value>`, as stored in the customer's identifier set."""
        return f"{self.kind.slug}:{self.value}"

    @staticmethod
    def decode(text: str) -> CustomerRef:
        slug, _, value = text.partition(":")
        return CustomerRef(IdentifierKind[slug.upper()], value)


@dataclasses.dataclass(frozen=True)
class Purchase:
    items: tuple[BasketLine, ...]
    amount: float
    currency: str
    store_id: str
    channel: Channel

    @property
    def total(self) -> float:
        """The amount, or the sum of the lines when the amount is zero (as the contract says)."""
        return self.amount if self.amount != 0 else sum(item.amount for item in self.items)


@dataclasses.dataclass(frozen=True)
class Interaction:
    kind: InteractionKind
    product_id: str
    category: str
    channel: Channel


@dataclasses.dataclass(frozen=True)
class OfferResponse:
    kind: OfferResponseKind
    offer_id: str
    decision_event_id: str
    channel: Channel


@dataclasses.dataclass(frozen=True)
class SupportContact:
    sentiment: float
    topic: str
    channel: Channel


@dataclasses.dataclass(frozen=True)
class LifeEvent:
    kind: LifeEventKind
    # None when the event did not say; the enclosing event's time is used then.
    time: datetime | None
    store_id: str


@dataclasses.dataclass(frozen=True)
class LocationPing:
    latitude: float
    longitude: float
    accuracy: float


Payload = Purchase | Interaction | OfferResponse | SupportContact | LifeEvent | LocationPing


@dataclasses.dataclass(frozen=True)
class Event:
    event_id: str
    customer: CustomerRef
    time: datetime
    payload: Payload | None
    # IANA zone of the customer's local time; None uses the configured default.
    zone: str | None = None


@dataclasses.dataclass(frozen=True)
class QuietHours:
    start_minute: int
    end_minute: int
    enabled: bool


@dataclasses.dataclass(frozen=True)
class Preferences:
    liked_products: tuple[str, ...] = ()
    liked_categories: tuple[str, ...] = ()
    disliked_products: tuple[str, ...] = ()
    disliked_categories: tuple[str, ...] = ()
    preferred_channels: tuple[Channel, ...] = ()
    quiet_hours: QuietHours | None = None
    language: str = ""


PREFERENCE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Preferences))


@dataclasses.dataclass(frozen=True)
class ConsentChange:
    purpose: Purpose
    channel: Channel
    status: ConsentStatus
    time: datetime
    source: str


@dataclasses.dataclass(frozen=True)
class ConsentState:
    purpose: Purpose
    channel: Channel
    status: ConsentStatus
    since: datetime
    source: str


@dataclasses.dataclass(frozen=True)
class Rfm:
    last_purchase_at: datetime | None = None
    purchase_count: int = 0
    total_spend: float = 0.0


@dataclasses.dataclass(frozen=True)
class Affinity:
    key: str
    score: float


@dataclasses.dataclass(frozen=True)
class ChannelStats:
    channel: Channel
    impressions: float
    responses: float
    responsiveness: float


@dataclasses.dataclass(frozen=True)
class LifeEventRecord:
    kind: LifeEventKind
    time: datetime
    store_id: str


@dataclasses.dataclass(frozen=True)
class OfferHistory:
    """The customer's latest response of each kind to one offer."""

    offer_id: str
    last_shown: datetime | None = None
    last_clicked: datetime | None = None
    last_redeemed: datetime | None = None
    last_dismissed: datetime | None = None
    # Decayed count of dismissals (the affinities' half-life).
    dismissals: float = 0.0


@dataclasses.dataclass(frozen=True)
class Profile:
    """The unified record as readers see it, with decay applied to the time it was read."""

    customer_id: str
    identifiers: tuple[CustomerRef, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    rfm: Rfm = Rfm()
    category_affinities: tuple[Affinity, ...] = ()
    product_affinities: tuple[Affinity, ...] = ()
    channels: tuple[ChannelStats, ...] = ()
    active_hours: tuple[float, ...] = (0.0,) * 24
    sentiment: float = 0.0
    recent_life_events: tuple[LifeEventRecord, ...] = ()
    preferences: Preferences = Preferences()
    consents: tuple[ConsentState, ...] = ()
    segments: tuple[str, ...] = ()
    home_store_id: str = ""
    # Most recent activity first.
    offer_history: tuple[OfferHistory, ...] = ()


@dataclasses.dataclass(frozen=True)
class RecordResult:
    accepted: int = 0
    duplicates: int = 0

    def __add__(self, other: RecordResult) -> RecordResult:
        return RecordResult(self.accepted + other.accepted, self.duplicates + other.duplicates)


@dataclasses.dataclass(frozen=True)
class LinkResult:
    customer_id: str
    merged: bool = False
    merged_customer_id: str = ""


@dataclasses.dataclass(frozen=True)
class EraseResult:
    erased: bool
    identifiers_removed: int


@dataclasses.dataclass(frozen=True)
class Export:
    profile: Profile
    consent_ledger: tuple[ConsentChange, ...]
    raw: dict[str, object]
