"""Proactive moments in a decision: which offers a trigger rule may use, and which it reserves."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from emma.decision.catalog import Offer
from emma.decision.domain import DecideInput, Moment

# Reason code of offers a moment or a reserved category removed (`filtered.moment`).
MOMENT = "moment"


def fits(offer: Offer, moment: Moment, store_id: str) -> bool:
    """Whether the moment's rule may use the offer."""
    if moment.offer_ids and offer.offer_id not in moment.offer_ids:
        return False
    if moment.categories and offer.category not in moment.categories:
        return False
    return not moment.store_offers or (bool(store_id) and store_id in offer.stores)


def candidates(offers: Iterable[Offer], request: DecideInput) -> tuple[tuple[Offer, ...], int]:
    """The offers a request may choose from, and how many the moment rules removed."""
    offers = tuple(offers)
    moment = request.moment
    if moment is None:
        kept = tuple(o for o in offers if not o.moments_only)
    else:
        kept = tuple(o for o in offers if fits(o, moment, request.store_id))
    return kept, len(offers) - len(kept)


def describe(moment: Moment | None) -> dict[str, str]:
    """The moment as the decision log records it (no personal data)."""
    if moment is None:
        return {}
    return {k: v for k, v in dataclasses.asdict(moment).items() if isinstance(v, str) and v}
