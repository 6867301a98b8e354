"""Why this offer and channel: the model's odds, what set the action apart, what was filtered.

Reasons name features, segments and filter counts, never an identifier or a value of the
profile, so a response can be shown or logged without personal data.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Mapping, Sequence

from emma.decision.domain import CustomerView
from emma.decision.eligibility import OFFER_REASONS, Action
from emma.decision.features import Namespaces, top_features
from emma.decision.segments import Rule

ACTION_FEATURES = 4
SHARED_FEATURES = 3


def _choice(pmf: Sequence[float], index: int) -> str:
    """The chosen action's probability, and whether it was the model's favourite."""
    best = pmf.index(max(pmf))
    # A pmf has no negative mass: all but the actions without any have some.
    among = f"p={pmf[index]:.3f} among {len(pmf) - list(pmf).count(0.0)} actions"
    if pmf[index] >= pmf[best]:
        return f"{among}; the model's top action"
    return f"{among}; explored (the top action had p={pmf[best]:.3f})"


def distinctive_features(
    per_action: Sequence[Namespaces],
    index: int,
    limit: int = ACTION_FEATURES,
    keys: Sequence[Sequence[str]] | None = None,
    key_counts: Mapping[str, int] | None = None,
) -> list[str]:
    """The chosen action's features, those fewest other candidates share first.

    With the shared features equal for every action, only the action's own features can
    make the model prefer it; the rarer a feature among the candidates, the more it sets
    this action apart. `keys`, each action's `<namespace> <name>` strings when the caller
    has them already (ActionFeatures.keys), spares listing them again; `key_counts`, how
    many actions have each (ActionFeatureCache.key_counts), spares counting them.
    """
    if keys is None:
        keys = [[f"{ns} {name}" for ns, features in action.items() for name in features]
                for action in per_action]  # fmt: skip
    everywhere = (
        key_counts
        if key_counts is not None
        else collections.Counter(itertools.chain.from_iterable(keys))
    )
    # Stable: among equally rare features the catalog's order stays.
    ranked = sorted(keys[index], key=lambda key: everywhere[key])
    return [key.partition(" ")[2] for key in ranked[:limit]]


def explain(
    *,
    actions: Sequence[Action],
    pmf: Sequence[float],
    index: int,
    shared: Namespaces,
    per_action: Sequence[Namespaces],
    filtered: Mapping[str, int],
    customer: CustomerView,
    segments: Mapping[str, Rule],
    keys: Sequence[Sequence[str]] | None = None,
    key_counts: Mapping[str, int] | None = None,
) -> list[tuple[str, str]]:
    """The reasons of a model decision, as (code, detail) pairs in a stable order."""
    chosen = actions[index]
    reasons = [
        ("chosen.model", _choice(pmf, index)),
        (
            "feature.action",
            ",".join(distinctive_features(per_action, index, keys=keys, key_counts=key_counts)),
        ),
        ("feature.shared", ",".join(top_features(shared, limit=SHARED_FEATURES))),
    ]
    matched = [
        name
        for name in chosen.offer.segments
        if name in segments and customer.personalised and segments[name].matches(customer)
    ]
    if matched:
        reasons.append(("targeted.segment", ",".join(matched)))
    if chosen.send_at is not None:
        reasons.append(
            ("scheduled.quiet_hours", "moved to the customer's most active hour after quiet hours")
        )
    reasons.extend(filter_reasons(filtered))
    return reasons


def filter_reasons(filtered: Mapping[str, int]) -> list[tuple[str, str]]:
    """`filtered.<code>` with how many offers (offer-level filters) or actions it removed."""
    out = []
    for code, count in sorted(filtered.items()):
        unit = "offer" if code.removeprefix("filtered.") in OFFER_REASONS else "action"
        out.append((code, f"{count} {unit}{'' if count == 1 else 's'}"))
    return out
