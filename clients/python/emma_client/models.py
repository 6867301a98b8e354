"""The SDK's typed results: small frozen dataclasses instead of protobuf messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from emma_client import names
from emma_client.protos.emma.decision.v1 import decision_pb2
from emma_client.protos.emma.profile.v1 import profile_pb2


@dataclasses.dataclass(frozen=True)
class Reason:
    """Why something was chosen or removed, e.g. code "filtered.consent"."""

    code: str
    detail: str = ""


def _time(stamp: Any, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


@dataclasses.dataclass(frozen=True)
class OpenOffer:
    """An offer the customer already holds, open in their wallet (e.g. an app coupon).

    A till reminds the cashier of it; redeeming it (`ProfileClient.redeem`) rewards
    `event_id`, the decision that created it.
    """

    offer_id: str
    title: str
    event_id: str
    #: Where it was delivered, e.g. "push".
    channel: str
    expires_at: datetime | None

    @classmethod
    def from_proto(cls, offer: decision_pb2.OpenOffer) -> OpenOffer:
        return cls(
            offer_id=offer.offer_id,
            title=offer.title,
            event_id=offer.event_id,
            channel=names.channel_name(offer.channel),
            expires_at=_time(offer.expires_at, offer.HasField("expires_at")),
        )


@dataclasses.dataclass(frozen=True)
class WalletOffer:
    """An offer delivered to the customer, as the profile's wallet holds it."""

    offer_id: str
    event_id: str
    channel: str
    delivered_at: datetime | None
    expires_at: datetime | None
    #: "open", "redeemed" or "expired".
    state: str

    @classmethod
    def from_proto(cls, offer: profile_pb2.WalletOffer) -> WalletOffer:
        return cls(
            offer_id=offer.offer_id,
            event_id=offer.event_id,
            channel=names.channel_name(offer.channel),
            delivered_at=_time(offer.delivered_at, offer.HasField("delivered_at")),
            expires_at=_time(offer.expires_at, offer.HasField("expires_at")),
            state=names.wallet_state_name(offer.state),
        )


@dataclasses.dataclass(frozen=True)
class Decision:
    """One decision: the offer, the channel and when to deliver it, plus how it was made."""

    event_id: str
    offer_id: str
    title: str
    description: str
    category: str
    payload: Mapping[str, str]
    #: Channel name as used by the SDK, e.g. "push", "receipt"; "" when none.
    channel: str
    send_at: datetime | None
    probability: float
    model_version: str
    reasons: tuple[Reason, ...]
    #: Names of degraded parts, e.g. ("profile",); empty when everything was used.
    degraded: tuple[str, ...]
    trace_id: str
    fallback: bool
    candidate_count: int = 0
    #: Offers the customer already holds that this touchpoint can honour.
    open_offers: tuple[OpenOffer, ...] = ()

    @classmethod
    def from_proto(cls, response: decision_pb2.DecideResponse) -> Decision:
        offer = response.offer
        return cls(
            event_id=response.event_id,
            offer_id=offer.offer_id,
            title=offer.title,
            description=offer.description,
            category=offer.category,
            payload=dict(offer.payload),
            channel=names.channel_name(response.channel),
            send_at=_time(response.send_at, response.HasField("send_at")),
            probability=response.probability,
            model_version=response.model_version,
            reasons=tuple(Reason(r.code, r.detail) for r in response.reasons),
            degraded=tuple(names.degraded_name(part) for part in response.degraded),
            trace_id=response.trace_id,
            fallback=response.fallback,
            candidate_count=response.candidate_count,
            open_offers=tuple(OpenOffer.from_proto(o) for o in response.open_offers),
        )

    @property
    def is_degraded(self) -> bool:
        return bool(self.degraded)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (send_at as ISO 8601)."""
        data = dataclasses.asdict(self)
        data["payload"] = dict(self.payload)
        data["send_at"] = _iso(self.send_at)
        data["reasons"] = [dataclasses.asdict(reason) for reason in self.reasons]
        data["degraded"] = list(self.degraded)
        data["open_offers"] = [
            {**dataclasses.asdict(offer), "expires_at": _iso(offer.expires_at)}
            for offer in self.open_offers
        ]
        return data


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
