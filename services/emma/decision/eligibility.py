"""Policy filters before any learning: which (offer, channel) actions may be offered at all."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Sequence

from emma.decision.catalog import Offer
from emma.decision.domain import (
    MARKETING_CHANNELS,
    TOUCHPOINT_CHANNELS,
    Channel,
    CustomerView,
    DecideInput,
    Purpose,
    Situation,
)

# Reason codes, stable for dashboards: every removal is counted under one of them.
VALIDITY = "validity"
SEASON = "season"
DAYPART = "daypart"
STORE = "store"
DISLIKE = "dislike"
TOUCHPOINT = "touchpoint"
CHANNEL = "channel"
CONSENT = "consent"
LIMIT = "limit"


@dataclasses.dataclass(frozen=True)
class Action:
    """One thing the model can choose: an offer on a channel."""

    offer: Offer
    channel: Channel


# A contact-policy rule (frequency caps, quiet hours, ... from issue 5): given an action
# that passed every other filter, the reason code that removes it, or None to keep it.
# Rules are plain functions over data fetched beforehand, so eligibility stays pure.
ActionRule = Callable[[Action], str | None]


@dataclasses.dataclass(frozen=True)
class Eligibility:
    actions: tuple[Action, ...]
    # reason code -> offers (offer-level filters) or actions (channel-level) removed.
    removed: collections.Counter[str]


def _offer_reason(offer: Offer, customer: CustomerView, situation: Situation) -> str | None:
    today = situation.local_time.date()
    if (offer.valid_from and today < offer.valid_from) or (
        offer.valid_until and today > offer.valid_until
    ):
        return VALIDITY
    if offer.seasons and not (
        situation.season in offer.seasons or offer.seasons & situation.retail_seasons
    ):
        return SEASON
    if offer.dayparts and situation.daypart not in offer.dayparts:
        return DAYPART
    if offer.stores and situation.store_id not in offer.stores:
        return STORE
    # Dislikes are the customer's explicit wish: honoured even without personalisation consent.
    if offer.category in customer.disliked_categories or any(
        product in customer.disliked_products for product in offer.products
    ):
        return DISLIKE
    return None


def _channel_reason(
    offer: Offer,
    channel: Channel,
    request: DecideInput,
    customer: CustomerView,
) -> str | None:
    if channel not in TOUCHPOINT_CHANNELS[request.touchpoint]:
        return TOUCHPOINT
    if request.allowed_channels and channel not in request.allowed_channels:
        return CHANNEL
    # Without a profile nothing is known to be consented, so consent-bound channels drop out.
    if channel in MARKETING_CHANNELS and not customer.consented(Purpose.MARKETING, channel):
        return CONSENT
    if offer.consent is not None and not customer.consented(offer.consent, channel):
        return CONSENT
    return None


def channel_allowed(
    offer: Offer, channel: Channel, request: DecideInput, customer: CustomerView
) -> bool:
    """Whether the channel-level filters (touchpoint, caller, consent) keep this pair."""
    return _channel_reason(offer, channel, request, customer) is None


def eligible_actions(
    offers: Iterable[Offer],
    request: DecideInput,
    customer: CustomerView,
    situation: Situation,
    *,
    rules: Sequence[ActionRule] = (),
    max_actions: int | None = None,
) -> Eligibility:
    """Applies every filter in a fixed order and counts each removal under its reason."""
    removed: collections.Counter[str] = collections.Counter()
    actions: list[Action] = []
    for offer in offers:
        reason = _offer_reason(offer, customer, situation)
        if reason is not None:
            removed[reason] += 1
            continue
        for channel in offer.channels:
            reason = _channel_reason(offer, channel, request, customer)
            if reason is None:
                action = Action(offer, channel)
                reason = next((r for rule in rules if (r := rule(action)) is not None), None)
            if reason is not None:
                removed[reason] += 1
            else:
                actions.append(Action(offer, channel))
    if max_actions is not None and len(actions) > max_actions:
        # Keep the marketers' priorities when the model cannot score everything in time.
        ranked = sorted(actions, key=lambda a: -a.offer.priority)
        removed[LIMIT] += len(actions) - max_actions
        kept = set(map(id, ranked[:max_actions]))
        actions = [a for a in actions if id(a) in kept]
    return Eligibility(actions=tuple(actions), removed=removed)
