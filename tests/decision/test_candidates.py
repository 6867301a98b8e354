"""A request's candidates: held offers and moment-only offers out, counted under their codes."""

from __future__ import annotations

from datetime import timedelta

from emma.decision.catalog import Catalog
from emma.decision.domain import Moment
from emma.decision.wallet import HeldOffer, offers_for

from .helpers import JUNE_MORNING, customer, offer, request

FALLBACK = offer("fallback", fallback=True)
CARD = offer("birthday-card", category="moment.birthday")
CATALOG = Catalog(offers=(offer("cheese"), offer("wine"), CARD, FALLBACK), fallback=FALLBACK)


def ids(offers: tuple[object, ...]) -> list[str]:
    return [o.offer_id for o in offers]  # type: ignore[attr-defined]


def test_without_a_moment_or_a_held_offer_the_catalogs_own_everyday_candidates() -> None:
    kept, filtered = offers_for(CATALOG, request(), customer())
    assert kept is CATALOG.everyday_candidates  # one tuple: per-place caches know it
    assert ids(kept) == ["cheese", "wine"]
    assert filtered == {"filtered.moment": 1}


def test_held_offers_and_moments_narrow_the_candidates_as_before() -> None:
    holding = customer(wallet=(HeldOffer("wine", "e-1", None, JUNE_MORNING + timedelta(days=1)),))
    kept, filtered = offers_for(CATALOG, request(), holding)
    assert ids(kept) == ["cheese"]
    assert filtered == {"filtered.wallet": 1, "filtered.moment": 1}
    birthday = request(moment=Moment("birthday", "birthday", categories=frozenset({CARD.category})))
    kept, filtered = offers_for(CATALOG, birthday, customer())
    assert ids(kept) == ["birthday-card"]
    assert filtered == {"filtered.moment": 2}
