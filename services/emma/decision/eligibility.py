"""Policy filters before any learning: which (offer, channel) actions may be offered at all."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

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
from emma.decision.policy import DEFAULT_POLICY, NO_CONTACTS, ContactHistory, ContactPolicy
from emma.decision.schedule import quiet_send_time
from emma.decision.segments import Rule

# Reason codes, stable for dashboards: every removal is counted under one of them
# (responses say `filtered.<code>`). Offer-level filters first, then channel-level ones.
VALIDITY = "validity"
SEASON = "season"
DAYPART = "daypart"
STORE = "store"
REGION = "region"
SEGMENT = "segment"
DISLIKE = "dislike"
COOLDOWN = "cooldown"
TOUCHPOINT = "touchpoint"
CHANNEL = "channel"
CONSENT = "consent"
QUIET_HOURS = "quiet_hours"
FREQUENCY_CAP = "frequency_cap"
POLICY_UNAVAILABLE = "policy_unavailable"
LIMIT = "limit"
# Codes counted per offer (every channel of it goes); the others count (offer, channel) actions.
OFFER_REASONS = frozenset({VALIDITY, SEASON, DAYPART, STORE, REGION, SEGMENT, DISLIKE, COOLDOWN})


@dataclasses.dataclass(frozen=True)
class Action:
    """One thing the model can choose: an offer on a channel, now or at `send_at`."""

    offer: Offer
    channel: Channel
    # A later delivery time (UTC) when quiet hours moved the send; None means now.
    send_at: datetime | None = None


# An extra rule: given an action that passed every other filter, the reason code that
# removes it, or None to keep it. Rules are plain functions over data fetched beforehand,
# so eligibility stays pure.
ActionRule = Callable[[Action], str | None]


@dataclasses.dataclass(frozen=True)
class Eligibility:
    actions: tuple[Action, ...]
    # reason code -> offers (offer-level filters) or actions (channel-level) removed.
    removed: collections.Counter[str]


@dataclasses.dataclass(frozen=True)
class Policy:
    """What the contact policy needs beyond the request: the rules and what Redis counted.

    `contacts` is None when the contact counters could not be read: then every channel a
    frequency cap covers is removed (POLICY_UNAVAILABLE), as nothing proves it is under cap.
    """

    contact: ContactPolicy = DEFAULT_POLICY
    segments: Mapping[str, Rule] = dataclasses.field(default_factory=dict)
    contacts: ContactHistory | None = NO_CONTACTS


NO_POLICY = Policy()


def _in_segments(offer: Offer, customer: CustomerView, policy: Policy) -> bool:
    # Targeting by profile is personalisation: without consent no segment matches.
    if not customer.personalised:
        return False
    return any(
        name in policy.segments and policy.segments[name].matches(customer)
        for name in offer.segments
    )


def _in_region(offer: Offer, situation: Situation) -> bool:
    if not situation.country:
        return False
    here = {situation.country}
    if situation.region:
        here.add(f"{situation.country}-{situation.region}")
    return not offer.regions.isdisjoint(here)


def _cooling_down(
    offer: Offer,
    customer: CustomerView,
    situation: Situation,
    contact: ContactPolicy,
    categories: Mapping[str, str],
) -> bool:
    now = situation.local_time
    if contact.offer_cooldown is not None:
        dismissed = customer.last_dismissed.get(offer.offer_id)
        if dismissed is not None and now - dismissed < contact.offer_cooldown:
            return True
    if contact.category_cooldown is not None:
        for offer_id, dismissed in customer.last_dismissed.items():
            if (
                categories.get(offer_id) == offer.category
                and now - dismissed < contact.category_cooldown
            ):
                return True
    return False


def _static_offer_reason(offer: Offer, situation: Situation) -> str | None:
    """The offer-level filters that depend on the place and day only, not the customer."""
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
    if offer.regions and not _in_region(offer, situation):
        return REGION
    return None


def _customer_offer_reason(
    offer: Offer,
    customer: CustomerView,
    situation: Situation,
    policy: Policy,
    categories: Mapping[str, str],
) -> str | None:
    if offer.segments and not _in_segments(offer, customer, policy):
        return SEGMENT
    # Dislikes and dismissals are the customer's explicit wishes: honoured even without
    # personalisation consent.
    if offer.category in customer.disliked_categories or (
        customer.disliked_products and not customer.disliked_products.isdisjoint(offer.products)
    ):
        return DISLIKE
    if customer.last_dismissed and _cooling_down(
        offer, customer, situation, policy.contact, categories
    ):
        return COOLDOWN
    return None


def _static_channel_reason(channel: Channel, request: DecideInput) -> str | None:
    """The channel-level filters of the touchpoint and the caller, not the customer."""
    if channel not in TOUCHPOINT_CHANNELS[request.touchpoint]:
        return TOUCHPOINT
    if request.allowed_channels and channel not in request.allowed_channels:
        return CHANNEL
    return None


def _consent_reason(offer: Offer, channel: Channel, customer: CustomerView) -> str | None:
    # Without a profile nothing is known to be consented, so consent-bound channels drop out.
    if channel in MARKETING_CHANNELS and not customer.consented(Purpose.MARKETING, channel):
        return CONSENT
    if offer.consent is not None and not customer.consented(offer.consent, channel):
        return CONSENT
    return None


def _channel_reason(
    offer: Offer,
    channel: Channel,
    request: DecideInput,
    customer: CustomerView,
) -> str | None:
    return _static_channel_reason(channel, request) or _consent_reason(offer, channel, customer)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """One offer's customer-independent outcome at one place, day and touchpoint."""

    offer: Offer
    # The offer-level reason that removes it, or None.
    reason: str | None
    # Its actions (sent now) whose channel the touchpoint and caller allow.
    actions: tuple[Action, ...]
    # Channel-level removals by the touchpoint and caller rules.
    removed: tuple[tuple[str, int], ...]


def _prepare(offer: Offer, request: DecideInput, situation: Situation) -> _Prepared:
    reason = _static_offer_reason(offer, situation)
    actions: list[Action] = []
    removed: collections.Counter[str] = collections.Counter()
    for channel in offer.channels:
        channel_reason = _static_channel_reason(channel, request)
        if channel_reason is None:
            actions.append(Action(offer, channel))
        else:
            removed[channel_reason] += 1
    return _Prepared(offer, reason, tuple(actions), tuple(removed.items()))


_StaticKey = tuple[object, ...]


class StaticEligibility:
    """The customer-independent filters' outcome, kept per (place, day, touchpoint, caller).

    Validity dates, seasons, dayparts, stores, regions and the touchpoint's and caller's
    channels are the same for every customer at one store at one moment: of the 50+
    offers' checks per decision, only segments, dislikes, cool-downs, consent, quiet
    hours, caps and rules depend on the customer. An entry holds each offer's outcome
    for the very Offer object it was computed from, so a reloaded catalog recomputes.
    """

    def __init__(self, entries: int = 1024) -> None:
        self._capacity = entries
        self._entries: collections.OrderedDict[_StaticKey, _Outcomes] = collections.OrderedDict()

    @staticmethod
    def key(request: DecideInput, situation: Situation) -> _StaticKey:
        return (
            situation.local_time.date(),
            situation.season,
            situation.retail_seasons,
            situation.daypart,
            situation.store_id,
            situation.country,
            situation.region,
            request.touchpoint,
            request.allowed_channels,
        )

    def prepared(
        self, offers: Sequence[Offer], request: DecideInput, situation: Situation
    ) -> Sequence[_Prepared]:
        key = self.key(request, situation)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Outcomes()
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        if entry.offers is offers:
            # The very candidates of the last decision here (Catalog.everyday_candidates).
            return entry.outcomes
        by_offer = entry.by_offer
        out = []
        for offer in offers:
            prepared = by_offer.get(offer.offer_id)
            if prepared is None or prepared.offer is not offer:
                prepared = by_offer[offer.offer_id] = _prepare(offer, request, situation)
            out.append(prepared)
        entry.offers, entry.outcomes = offers, tuple(out)
        return entry.outcomes


class _Outcomes:
    """One place's customer-independent outcomes, by offer id, and those of the last
    candidates asked for, in their order."""

    def __init__(self) -> None:
        self.by_offer: dict[str, _Prepared] = {}
        self.offers: Sequence[Offer] | None = None
        self.outcomes: tuple[_Prepared, ...] = ()


def _in_quiet_hours(
    channel: Channel, customer: CustomerView, situation: Situation, policy: Policy
) -> bool:
    return (
        channel in policy.contact.quiet_channels
        and customer.quiet_hours is not None
        and customer.quiet_hours.contains(situation.local_time)
    )


def _contact_reason(channel: Channel, send_at: datetime, policy: Policy) -> str | None:
    caps = policy.contact.caps_for(channel)
    if not caps:
        return None
    if policy.contacts is None:
        return POLICY_UNAVAILABLE
    return FREQUENCY_CAP if policy.contacts.exceeded(caps, send_at) is not None else None


class _QuietSend:
    """When intrusive sends inside quiet hours go out: the same for every action, so once."""

    def __init__(self, customer: CustomerView, situation: Situation, contact: ContactPolicy):
        self.customer = customer
        self.situation = situation
        self.contact = contact
        self._known = False
        self._at: datetime | None = None

    def at(self) -> datetime | None:
        if not self._known and self.customer.quiet_hours is not None:
            self._at = quiet_send_time(
                self.situation.local_time,
                self.customer.quiet_hours,
                self.customer.active_hours,
                self.contact.quiet_horizon,
                self.situation.time_zone,
            )
            self._known = True
        return self._at


def channel_allowed(
    offer: Offer,
    channel: Channel,
    request: DecideInput,
    customer: CustomerView,
    situation: Situation | None = None,
    policy: Policy = NO_POLICY,
) -> bool:
    """Whether a channel may carry an answer that is never scheduled nor counted (fallback).

    Touchpoint, caller and consent rules apply; with a situation, an intrusive channel
    inside quiet hours and any frequency-capped channel are refused too.
    """
    if _channel_reason(offer, channel, request, customer) is not None:
        return False
    if situation is None:
        return True
    return not policy.contact.capped(channel) and not _in_quiet_hours(
        channel, customer, situation, policy
    )


def eligible_actions(
    offers: Iterable[Offer],
    request: DecideInput,
    customer: CustomerView,
    situation: Situation,
    *,
    policy: Policy = NO_POLICY,
    rules: Sequence[ActionRule] = (),
    max_actions: int | None = None,
    static: StaticEligibility | None = None,
) -> Eligibility:
    """Applies every filter in a fixed order and counts each removal under its reason.

    `static` keeps the customer-independent filters' outcomes across decisions.
    """
    offers = tuple(offers)
    removed: collections.Counter[str] = collections.Counter()
    actions: list[Action] = []
    categories = (
        {offer.offer_id: offer.category for offer in offers} if customer.last_dismissed else {}
    )
    capped: dict[tuple[Channel, datetime], str | None] = {}
    # (consent purpose, channel) -> the channel's verdict for this customer: a reason code
    # (consent, quiet hours, caps), or the send time (None: now). The same for every offer
    # with that purpose, so worked out once per decision.
    verdicts: dict[tuple[Purpose | None, Channel], tuple[str | None, datetime | None]] = {}
    later = _QuietSend(customer, situation, policy.contact)
    quiet = customer.quiet_hours is not None and customer.quiet_hours.contains(situation.local_time)

    def verdict(offer: Offer, channel: Channel) -> tuple[str | None, datetime | None]:
        reason = _consent_reason(offer, channel, customer)
        send_at = None
        if reason is None and quiet and channel in policy.contact.quiet_channels:
            send_at = later.at()
            if send_at is None:
                reason = QUIET_HOURS
        if reason is None:
            # Every offer on a channel at one send time meets the same caps: count once.
            at = send_at or request.request_time
            if (channel, at) not in capped:
                capped[(channel, at)] = _contact_reason(channel, at, policy)
            reason = capped[(channel, at)]
        return reason, send_at

    prepared = (static or StaticEligibility()).prepared(offers, request, situation)
    for entry in prepared:
        offer = entry.offer
        reason = entry.reason or _customer_offer_reason(
            offer, customer, situation, policy, categories
        )
        if reason is not None:
            removed[reason] += 1
            continue
        for code, count in entry.removed:
            removed[code] += count
        for action in entry.actions:
            key = (offer.consent, action.channel)
            outcome = verdicts.get(key)
            if outcome is None:
                outcome = verdicts[key] = verdict(offer, action.channel)
            reason, send_at = outcome
            if send_at is not None and reason is None:
                action = Action(offer, action.channel, send_at)
            if reason is None and rules:
                reason = next((r for rule in rules if (r := rule(action)) is not None), None)
            if reason is not None:
                removed[reason] += 1
            else:
                actions.append(action)
    if max_actions is not None and len(actions) > max_actions:
        # Keep the marketers' priorities when the model cannot score everything in time.
        removed[LIMIT] += len(actions) - max_actions
        ranks = [-action.offer.priority for action in actions]
        # Stable, so the first among equal priorities stay; then back in their order.
        kept = sorted(sorted(range(len(actions)), key=ranks.__getitem__)[:max_actions])
        actions = [actions[i] for i in kept]
    return Eligibility(actions=tuple(actions), removed=removed)
