"""Model features: shared (profile, context), per action (offer, channel, customer match)."""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from emma.decision.decision_log import encode_json
from emma.decision.domain import Channel, CustomerView, Situation
from emma.decision.eligibility import Action

# Namespace names: their first letters are what VW's -q interactions refer to.
USER = "U"
CONTEXT = "C"
OFFER = "A"
CHANNEL = "H"
# How this customer relates to this action (liked category, affinity rank, channel rank).
MATCH = "M"

# namespace -> feature name -> value. Categorical facts are `name=value` with value 1, so the
# same hash results from the text lines the replicas score and the DSJSON lines the learner
# learns from.
Namespaces = dict[str, dict[str, float]]

_UNSAFE = re.compile(r"[\s:|]+")
TOP_AFFINITIES = 3
# Buckets (upper bound inclusive, label) keep RFM coarse: the model generalises, and the log
# holds no exact spend.
_RECENCY_DAYS = ((7.0, "week"), (30.0, "month"), (90.0, "quarter"))
_FREQUENCY = ((0.0, "0"), (1.0, "1"), (5.0, "2_5"), (20.0, "6_20"))
_MONETARY = ((0.0, "0"), (50.0, "lt50"), (200.0, "lt200"), (1000.0, "lt1000"))


@functools.lru_cache(maxsize=16384)
def sanitize(name: str) -> str:
    """A feature or namespace name VW's text format cannot misread (no spaces, ':' or '|').

    Names come from a bounded vocabulary (catalog, context features, categories), so a
    bounded cache spares the regular expression on nearly every call.
    """
    return _UNSAFE.sub("_", name.strip()) or "_"


def _put(namespace: dict[str, float], name: str, value: float | str = 1.0) -> None:
    if isinstance(value, str):
        namespace[sanitize(f"{name}={value}")] = 1.0
    elif math.isfinite(value) and value != 0.0:
        namespace[sanitize(name)] = float(value)


def _bucket(value: float, edges: Iterable[tuple[float, str]], last: str) -> str:
    return next((label for edge, label in edges if value <= edge), last)


def _sentiment(value: float) -> str:
    return "neg" if value < -0.2 else "pos" if value > 0.2 else "neu"


def profile_features(customer: CustomerView) -> dict[str, float]:
    """The U namespace; only a marker unless the customer consented to personalisation."""
    ns: dict[str, float] = {}
    if not customer.available:
        _put(ns, "profile", "unavailable")
        return ns
    if not customer.found:
        _put(ns, "profile", "unknown")
        return ns
    if not customer.personalised:
        _put(ns, "profile", "anonymous")
        return ns
    _put(ns, "profile", "known")
    for category, score in customer.category_affinities[:TOP_AFFINITIES]:
        _put(ns, f"aff={category}", score)
    for category in sorted(customer.liked_categories):
        _put(ns, "like", category)
    days = customer.days_since_purchase
    recency = "never" if days is None else _bucket(days, _RECENCY_DAYS, "lapsed")
    _put(ns, "rfm_r", recency)
    _put(ns, "rfm_f", _bucket(customer.purchase_count, _FREQUENCY, "21+"))
    _put(ns, "rfm_m", _bucket(customer.total_spend, _MONETARY, "1000+"))
    for segment in customer.segments:
        _put(ns, "seg", segment)
    for channel, responsiveness in sorted(customer.channel_responsiveness.items()):
        _put(ns, f"resp={channel.value}", responsiveness)
    _put(ns, "sentiment", _sentiment(customer.sentiment))
    return ns


def context_features(situation: Situation) -> dict[str, float]:
    """The C namespace: the context service's features as they are."""
    return dict(_context_namespace(situation.features))


@functools.lru_cache(maxsize=1024)
def _context_namespace(
    features: tuple[tuple[str, float | str], ...],
) -> tuple[tuple[str, float], ...]:
    # Till decisions at one store within a minute share their context (the decision
    # service's context cache), so its namespace is rendered once for all of them.
    ns: dict[str, float] = {}
    for name, value in features:
        _put(ns, name, value)
    return tuple(ns.items())


def shared_features(customer: CustomerView, situation: Situation) -> Namespaces:
    return {USER: profile_features(customer), CONTEXT: context_features(situation)}


def action_features(action: Action, match: Match = ()) -> Namespaces:
    """The A (offer) and H (channel) namespaces, and M when the customer matches anything."""
    offer_ns: dict[str, float] = {}
    _put(offer_ns, "offer", action.offer.offer_id)
    _put(offer_ns, "cat", action.offer.category)
    for product in action.offer.products:
        _put(offer_ns, "prod", product)
    for name, value in sorted(action.offer.features.items()):
        _put(offer_ns, name, value)
    channel_ns: dict[str, float] = {}
    _put(channel_ns, "ch", action.channel.value)
    namespaces = {OFFER: offer_ns, CHANNEL: channel_ns}
    if match:
        namespaces[MATCH] = {sanitize(name): 1.0 for name in match}
    return namespaces


# Ranks past these share one feature: the model needs "a favourite", not "the ninth".
_AFFINITY_RANKS = 3
_CHANNEL_RANKS = 2
Match = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class CustomerMatch:
    """What the M features need of one customer, prepared once per request.

    The features are categorical (`liked`, `aff_rank=1`, `resp_rank=2`, ...): each action
    has only a few possible M parts, so an action's text with its M part repeats across
    requests and customers, and the model keeps the parsed example as it keeps the offer's
    own. They are the same for every category and channel, so what the model learns of
    "the customer's favourite category" carries over to categories it has seen less of;
    `-q UA` would have to learn each (liked category, offer category) pair on its own.
    """

    liked_categories: frozenset[str] = frozenset()
    liked_products: frozenset[str] = frozenset()
    # category -> 1-based rank among the customer's affinities, highest first.
    affinity_ranks: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # channel -> 1-based rank by responsiveness, among channels with any response history.
    channel_ranks: Mapping[Channel, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, customer: CustomerView) -> CustomerMatch:
        """Nothing (no M features) unless the customer consented to personalisation."""
        if not (customer.available and customer.found and customer.personalised):
            return NO_MATCH
        responsive = sorted(
            ((c, r) for c, r in customer.channel_responsiveness.items() if r > 0),
            key=lambda item: (-item[1], item[0].value),
        )
        return cls(
            liked_categories=customer.liked_categories,
            liked_products=customer.liked_products,
            affinity_ranks={
                category: rank
                for rank, (category, score) in enumerate(customer.category_affinities, 1)
                if score > 0
            },
            channel_ranks={channel: rank for rank, (channel, _) in enumerate(responsive, 1)},
        )

    def features(self, action: Action) -> Match:
        """The M features of one action: a handful of dictionary and set look-ups."""
        if self is NO_MATCH:
            return ()
        offer = action.offer
        names: list[str] = []
        if offer.category in self.liked_categories:
            names.append("liked")
        if self.liked_products and not self.liked_products.isdisjoint(offer.products):
            names.append("liked_product")
        if self.affinity_ranks:
            rank = self.affinity_ranks.get(offer.category)
            names.append(_rank("aff_rank", rank, _AFFINITY_RANKS))
        if self.channel_ranks:
            rank = self.channel_ranks.get(action.channel)
            names.append(_rank("resp_rank", rank, _CHANNEL_RANKS))
        return tuple(names)


NO_MATCH = CustomerMatch()


def _rank(name: str, rank: int | None, top: int) -> str:
    if rank is None:
        return f"{name}=none"
    return f"{name}={rank}" if rank <= top else f"{name}=low"


def _render(namespaces: Mapping[str, Mapping[str, float]]) -> str:
    parts = []
    for namespace, features in namespaces.items():
        if not features:
            continue
        rendered = " ".join(
            name if value == 1.0 else f"{name}:{value:.6g}" for name, value in features.items()
        )
        parts.append(f"|{namespace} {rendered}")
    return " ".join(parts)


def shared_line(shared: Namespaces) -> str:
    """The shared line of a multi-line VW text example."""
    return f"shared {_render(shared)}".rstrip()


def vw_lines(shared: Namespaces, actions: Iterable[Namespaces]) -> list[str]:
    """A multi-line VW text example: the shared line, then one line per action."""
    return [shared_line(shared), *(_render(a) for a in actions)]


@dataclasses.dataclass(frozen=True)
class ActionFeatures:
    """An action's namespaces (read-only: shared by every decision), their VW text and
    their DSJSON (the action's object in the decision log's `_multi`)."""

    namespaces: Namespaces
    line: str
    json: str
    # `<namespace> <feature name>` of every feature: what the reasons compare across
    # actions (strings, whose hashes Python keeps, as they are counted per decision).
    keys: tuple[str, ...]


class ActionFeatureCache:
    """Each (offer, channel, M part)'s features, computed once per catalog version of the offer.

    Rendering fifty actions costs close to a millisecond of Python; the catalog changes
    rarely and an action has only a few M parts, so each is computed once. A reloaded
    catalog brings new Offer objects, and an entry counts only for the very object it
    was computed from.
    """

    def __init__(self, capacity: int = 10_000, candidate_sets: int = 256) -> None:
        self._capacity = capacity
        self._entries: collections.OrderedDict[
            tuple[str, Channel, Match], tuple[object, ActionFeatures]
        ] = collections.OrderedDict()
        self._candidate_sets = candidate_sets
        self._key_counts: dict[
            tuple[int, ...], tuple[tuple[ActionFeatures, ...], Mapping[str, int]]
        ] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, action: Action, match: Match = ()) -> ActionFeatures:
        """The action's features with `match` (from CustomerMatch.features) as its M part."""
        # The channel itself, not its value: a StrEnum member hashes and compares as its
        # value, and reading `.value` runs a Python descriptor, fifty times per decision.
        key = (action.offer.offer_id, action.channel, match)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is action.offer:
            return entry[1]
        namespaces = action_features(action, match)
        features = ActionFeatures(
            namespaces,
            _render(namespaces),
            encode_json({ns: f for ns, f in namespaces.items() if f}),
            tuple(f"{ns} {name}" for ns, names in namespaces.items() for name in names),
        )
        self._entries[key] = (action.offer, features)
        self._entries.move_to_end(key)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return features

    def get_all(self, actions: Iterable[Action], match: CustomerMatch) -> list[ActionFeatures]:
        """`get` for every action, with the customer's M part: the per-decision hot loop."""
        entries = self._entries
        # The M part depends on the category, the channel and (for liked products) the
        # products: a decision's fifty actions have only a handful of distinct ones.
        parts: dict[tuple[str, Channel, tuple[str, ...]], Match] = {}
        products = bool(match.liked_products)
        out = []
        for action in actions:
            offer = action.offer
            part_key = (offer.category, action.channel, offer.products if products else ())
            part = parts.get(part_key)
            if part is None:
                part = parts[part_key] = match.features(action)
            entry = entries.get((offer.offer_id, action.channel, part))
            if entry is not None and entry[0] is offer:
                out.append(entry[1])
            else:
                out.append(self.get(action, part))
        return out

    def key_counts(self, candidates: Sequence[ActionFeatures]) -> Mapping[str, int]:
        """How many of `candidates` have each `<namespace> <name>` key (what the reasons
        rank an action's features by). Decisions at one place and time for alike customers
        score the very same cached features, so the count is kept for the latest
        `candidate_sets` candidate lists, by the identity of their entries."""
        identity = tuple(map(id, candidates))
        known = self._key_counts.get(identity)
        if known is not None:
            return known[1]
        counts = collections.Counter(itertools.chain.from_iterable(f.keys for f in candidates))
        # The entries are held with their count: while it is kept, no other object can
        # take one of their ids.
        self._key_counts[identity] = (tuple(candidates), counts)
        if len(self._key_counts) > self._candidate_sets:
            del self._key_counts[next(iter(self._key_counts))]
        return counts


def with_label(lines: list[str], index: int, cost: float, probability: float) -> list[str]:
    """The same example with a CB label (`0:cost:probability`) on action `index`."""
    labelled = list(lines)
    labelled[index + 1] = f"0:{cost:.6g}:{probability:.6g} {lines[index + 1]}"
    return labelled


def dsjson_context(shared: Namespaces, actions: Iterable[Namespaces]) -> dict[str, object]:
    """The DSJSON `c` object: shared namespaces, and `_multi` with one object per action."""
    context: dict[str, object] = {ns: dict(f) for ns, f in shared.items() if f}
    context["_multi"] = [{ns: dict(f) for ns, f in action.items() if f} for action in actions]
    return context


def top_features(namespaces: Namespaces, limit: int = 3) -> list[str]:
    """The strongest features' names (never values): what the reasons may show."""
    ranked = sorted(
        (f for features in namespaces.values() for f in features.items()),
        key=lambda item: -abs(item[1]),
    )
    return [name for name, _ in ranked[:limit]]
