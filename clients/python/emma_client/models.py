"""The SDK's typed results: small frozen dataclasses instead of protobuf messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from emma.decision.v1 import decision_pb2
from emma_client import names


@dataclasses.dataclass(frozen=True)
class Reason:
    """Why something was chosen or removed, e.g. code "filtered.consent"."""

    code: str
    detail: str = ""


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
            send_at=(
                response.send_at.ToDatetime(tzinfo=UTC) if response.HasField("send_at") else None
            ),
            probability=response.probability,
            model_version=response.model_version,
            reasons=tuple(Reason(r.code, r.detail) for r in response.reasons),
            degraded=tuple(names.degraded_name(part) for part in response.degraded),
            trace_id=response.trace_id,
            fallback=response.fallback,
            candidate_count=response.candidate_count,
        )

    @property
    def is_degraded(self) -> bool:
        return bool(self.degraded)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (send_at as ISO 8601)."""
        data = dataclasses.asdict(self)
        data["payload"] = dict(self.payload)
        data["send_at"] = self.send_at.isoformat() if self.send_at else None
        data["reasons"] = [dataclasses.asdict(reason) for reason in self.reasons]
        data["degraded"] = list(self.degraded)
        return data
