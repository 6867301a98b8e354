"""The customer's wallet as a decision sees it: offers already held are reminded, not re-offered."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime

from emma.decision import moments
from emma.decision.catalog import Catalog, Offer
from emma.decision.domain import Channel, CustomerView, DecideInput, Touchpoint

# Reason code of a held offer removed from the candidates (responses say `filtered.wallet`).
WALLET = "wallet"
REMINDER = "wallet.reminder"


@dataclasses.dataclass(frozen=True)
class HeldOffer:
    """An offer delivered to the customer and still open (the profile's wallet)."""

    offer_id: str
    # The decision that created it; redeeming it rewards that decision.
    event_id: str
    channel: Channel | None
    expires_at: datetime
    title: str = ""


def held(customer: CustomerView, now: datetime) -> tuple[HeldOffer, ...]:
    """The customer's open offers that have not expired by `now`."""
    return tuple(offer for offer in customer.wallet if offer.expires_at > now)


def without_held(
    offers: Iterable[Offer], customer: CustomerView, now: datetime
) -> tuple[tuple[Offer, ...], int]:
    """The offers the customer does not hold already, and how many were removed."""
    holding = {offer.offer_id for offer in held(customer, now)}
    offers = tuple(offers)
    if not holding:
        return offers, 0
    kept = tuple(offer for offer in offers if offer.offer_id not in holding)
    return kept, len(offers) - len(kept)


def reminders(
    request: DecideInput, customer: CustomerView, offers: Iterable[Offer]
) -> tuple[HeldOffer, ...]:
    """What the touchpoint is reminded of: every open offer, soonest to expire first.

    A proactive moment reminds nobody (it reaches out with something new).
    """
    if request.touchpoint is Touchpoint.TRIGGER or not customer.wallet:
        return ()
    titles = {offer.offer_id: offer.title for offer in offers}
    return tuple(
        dataclasses.replace(offer, title=titles.get(offer.offer_id, ""))
        for offer in sorted(held(customer, request.request_time), key=lambda o: o.expires_at)
    )


def offers_for(
    catalog: Catalog, request: DecideInput, customer: CustomerView
) -> tuple[tuple[Offer, ...], dict[str, int]]:
    """The catalog's candidates for one request: without held offers, within its moment's
    rule (if any), without moment-only offers otherwise; and `filtered.<code>` counts of
    removals. Without a moment and held offers, the catalog's own everyday candidates."""
    offers = catalog.candidates
    kept, held_count = without_held(offers, customer, request.request_time)
    if request.moment is None and kept is offers:
        everyday = catalog.everyday_candidates
        kept, moment_count = everyday, len(offers) - len(everyday)
    else:
        kept, moment_count = moments.candidates(kept, request)
    removed = {f"filtered.{WALLET}": held_count, f"filtered.{moments.MOMENT}": moment_count}
    return kept, {code: count for code, count in removed.items() if count}
