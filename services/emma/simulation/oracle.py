"""What the service may choose for a simulated request, and what each reference policy earns.

The simulation catalog is kept simple enough that the eligible set is known exactly: no
validity dates, seasons, dayparts, stores, segments or contact caps, and customers have no
quiet hours. Offers reserved for moments (`moment.*` categories) may use any rule: ordinary
requests never see them. So the actions are the catalog's (offer, channel) pairs that pass the
touchpoint, consent and dislike rules, in catalog order, as the decision service lists
them. The driver checks each response's candidate count against this set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emma.decision.catalog import Catalog, Offer
from emma.decision.domain import Channel, Purpose
from emma.simulation.population import (
    APP_CHANNELS,
    MARKETING_CHANNELS,
    POS_CHANNELS,
    Customer,
)
from emma.simulation.world import Moment, World

TOUCHPOINT_CHANNELS = {"app": APP_CHANNELS, "pos": POS_CHANNELS}


class UnsupportedCatalog(ValueError):
    """The catalog uses a rule the simulation does not model, so its oracle would be wrong."""


def check_catalog(catalog: Catalog) -> None:
    """Raises UnsupportedCatalog naming the first offer with a rule the oracle cannot follow."""
    policy = catalog.policy
    if policy.caps or policy.offer_cooldown or policy.category_cooldown:
        raise UnsupportedCatalog(
            f"{catalog.source}: contact_policy: caps and cool-downs are not simulated"
        )
    for offer in catalog.everyday_candidates:
        rules = {
            "valid_from": offer.valid_from,
            "valid_until": offer.valid_until,
            "seasons": offer.seasons,
            "dayparts": offer.dayparts,
            "stores": offer.stores,
            "regions": offer.regions,
            "segments": offer.segments,
        }
        used = [name for name, value in rules.items() if value]
        if used:
            raise UnsupportedCatalog(
                f"{catalog.source}: {offer.offer_id}: {', '.join(used)} not simulated; "
                "the oracle needs every offer's eligibility to be known"
            )


Action = tuple[Offer, Channel]


def _consented(offer: Offer, channel: str, customer: Customer) -> bool:
    if channel in MARKETING_CHANNELS and channel not in customer.marketing:
        return False
    if offer.consent is Purpose.PERSONALISATION:
        return customer.personalised
    if offer.consent is Purpose.MARKETING:
        return channel in customer.marketing
    return offer.consent is None


def eligible_actions(catalog: Catalog, customer: Customer, moment: Moment) -> list[Action]:
    """The (offer, channel) pairs the decision service chooses among, in its order."""
    allowed = TOUCHPOINT_CHANNELS[moment.touchpoint]
    actions = []
    for offer in catalog.everyday_candidates:
        if offer.category in customer.disliked:
            continue
        for channel in offer.channels:
            if channel.value in allowed and _consented(offer, channel.value, customer):
                actions.append((offer, channel))
    return actions


def baseline_action(actions: Sequence[Action]) -> Action:
    """The catalog's priority order: the highest priority, the first among equals."""
    best = max(offer.priority for offer, _ in actions)
    return next(action for action in actions if action[0].priority == best)


@dataclasses.dataclass(frozen=True)
class Counterfactual:
    """Expected rewards of the reference policies for one request (no RPC involved)."""

    eligible: int
    oracle: float
    random: float
    baseline: float
    best: tuple[str, str]  # the oracle's (offer id, channel)


def counterfactual(
    world: World, catalog: Catalog, customer: Customer, moment: Moment
) -> Counterfactual | None:
    """The oracle's, uniform random's and the baseline's expected reward; None if nothing
    is eligible (the service answers its fallback, and so would every policy)."""
    actions = eligible_actions(catalog, customer, moment)
    if not actions:
        return None
    chances = [world.probability(customer.tastes, moment, o, c) for o, c in actions]
    best = max(range(len(actions)), key=chances.__getitem__)
    baseline = actions.index(baseline_action(actions))
    return Counterfactual(
        eligible=len(actions),
        oracle=chances[best],
        random=sum(chances) / len(chances),
        baseline=chances[baseline],
        best=(actions[best][0].offer_id, actions[best][1].value),
    )
