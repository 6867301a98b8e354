"""The simulated world, population and oracle, without any service."""

from __future__ import annotations

import collections
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from emma.decision.catalog import Catalog, load_catalog
from emma.decision.domain import Channel
from emma.simulation.oracle import (
    UnsupportedCatalog,
    baseline_action,
    check_catalog,
    counterfactual,
    eligible_actions,
)
from emma.simulation.population import (
    ZONE,
    Customer,
    PopulationSettings,
    Visits,
    make_population,
)
from emma.simulation.run import CATALOG
from emma.simulation.world import Moment, Tastes, World, daypart_of, season_of


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG)


def moment(hour: int, month: int = 6, touchpoint: str = "app") -> Moment:
    local = datetime(2026, month, 10, hour, 30, tzinfo=ZONE)
    store = "berlin-mitte" if touchpoint == "pos" else ""
    return Moment(local.astimezone(UTC), local, touchpoint, store)


def customer(
    likes: dict[str, float],
    channels: dict[str, float] | None = None,
    *,
    marketing: frozenset[str] = frozenset({"push", "email", "sms"}),
    disliked: tuple[str, ...] = (),
    personalised: bool = True,
) -> Customer:
    return Customer(
        customer_id="t-1",
        tastes=Tastes(categories=likes, channels=channels or {}),
        personalised=personalised,
        marketing=marketing,
        liked=(),
        disliked=disliked,
        home_store="berlin-mitte",
        purchases=(),
        contacts=(),
    )


def test_the_world_keeps_the_context_services_dayparts_and_seasons() -> None:
    hours = {4: "night", 5: "morning", 10: "morning", 11: "lunch", 14: "afternoon"}
    hours |= {17: "evening", 21: "evening", 22: "night", 23: "night"}
    for hour, daypart in hours.items():
        assert daypart_of(datetime(2026, 1, 1, hour)) == daypart
    assert [season_of(datetime(2026, m, 1)) for m in (12, 3, 6, 9)] == [
        "winter",
        "spring",
        "summer",
        "autumn",
    ]


def test_the_response_probability_is_logistic_in_additive_effects(catalog: Catalog) -> None:
    world = World()
    coffee = catalog.get("espresso-3off")
    assert coffee is not None
    tastes = Tastes(categories={"coffee": 2.0}, channels={"push": 1.0})
    morning = moment(8, month=1)
    expected_logit = world.base + 2.0 + 1.2 + 0.3 + 1.0 - 0.2  # taste, morning, winter, push
    assert world.logit(tastes, morning, coffee, Channel.PUSH) == pytest.approx(expected_logit)
    chance = world.probability(tastes, morning, coffee, Channel.PUSH)
    assert chance == pytest.approx(1 / (1 + math.exp(-expected_logit)))
    evening = world.probability(tastes, moment(19, month=1), coffee, Channel.PUSH)
    assert evening < chance  # coffee sells in the morning


def test_the_best_action_depends_on_the_customer_and_the_daypart(catalog: Catalog) -> None:
    world = World()
    coffee_lover = customer({"coffee": 2.0, "wine": 0.0}, {"in_app": 1.0})
    wine_lover = customer({"wine": 2.0, "coffee": 0.0}, {"email": 1.0})

    def best(person: Customer, hour: int) -> tuple[str, str]:
        result = counterfactual(world, catalog, person, moment(hour))
        assert result is not None
        return result.best

    assert best(coffee_lover, 8) == ("espresso-3off", "in_app")
    assert best(wine_lover, 20) == ("riesling-case", "email")
    assert best(wine_lover, 8) != best(wine_lover, 20)


def test_no_single_action_is_best_for_the_population(catalog: Catalog) -> None:
    """A real contextual problem: a constant choice earns far less than the oracle."""
    world = World()
    categories = sorted({o.category for o in catalog.everyday_candidates})
    people = make_population(categories, PopulationSettings(customers=200), seed=3, prefix="t")
    visits = Visits(people)
    rng = np.random.default_rng(0)
    winners: collections.Counter[tuple[str, str]] = collections.Counter()
    oracle, baseline, uniform = [], [], []
    for _ in range(3000):
        person, when = visits.draw(rng)
        result = counterfactual(world, catalog, person, when)
        assert result is not None
        winners[result.best] += 1
        oracle.append(result.oracle)
        baseline.append(result.baseline)
        uniform.append(result.random)
    assert winners.most_common(1)[0][1] < 0.25 * 3000
    assert len(winners) >= 15
    assert np.mean(baseline) < 0.5 * np.mean(oracle)
    assert np.mean(uniform) < 0.4 * np.mean(oracle)


def test_eligible_actions_follow_touchpoint_consent_and_dislikes(catalog: Catalog) -> None:
    everyone = customer({})
    assert len(eligible_actions(catalog, everyone, moment(12))) == 19
    assert len(eligible_actions(catalog, everyone, moment(12, touchpoint="pos"))) == 13
    in_app_only = customer({}, marketing=frozenset())
    actions = eligible_actions(catalog, in_app_only, moment(12))
    assert {channel for _, channel in actions} == {Channel.IN_APP}
    no_wine = customer({}, disliked=("wine",))
    assert all(
        offer.category != "wine" for offer, _ in eligible_actions(catalog, no_wine, moment(12))
    )
    # In catalog order (offers, then each offer's channels), as the service lists them.
    listed = [(o.offer_id, c.value) for o, c in eligible_actions(catalog, everyone, moment(12))]
    assert listed[:3] == [
        ("riesling-case", "in_app"),
        ("riesling-case", "push"),
        ("riesling-case", "email"),
    ]
    assert (
        baseline_action(eligible_actions(catalog, no_wine, moment(12)))[0].offer_id
        == "haferflocken-bio"
    )


def test_the_counterfactuals_bound_each_other(catalog: Catalog) -> None:
    world = World()
    person = customer({"sweets": 2.0}, {"email": 1.0})
    when = moment(15, month=12)
    result = counterfactual(world, catalog, person, when)
    assert result is not None
    chances = [
        world.probability(person.tastes, when, offer, channel)
        for offer, channel in eligible_actions(catalog, person, when)
    ]
    assert result.oracle == pytest.approx(max(chances))
    assert result.random == pytest.approx(sum(chances) / len(chances))
    assert result.baseline <= result.oracle
    assert result.best == ("lebkuchen-tuete", "email")
    nothing = customer(
        {}, marketing=frozenset(), disliked=tuple({o.category for o in catalog.everyday_candidates})
    )
    assert counterfactual(world, catalog, nothing, when) is None


def test_catalogs_with_rules_the_oracle_cannot_follow_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "offers:\n"
        "  - {id: a, title: A, category: x, channels: [in_app], dayparts: [morning]}\n"
        "  - {id: f, title: F, category: y, channels: [in_app], fallback: true}\n"
    )
    with pytest.raises(UnsupportedCatalog, match="a: dayparts"):
        check_catalog(load_catalog(path))
    path.write_text(
        "contact_policy:\n  caps:\n    - {name: c, channels: [push], max: 1, window: 1d}\n"
        "offers:\n"
        "  - {id: a, title: A, category: x, channels: [in_app]}\n"
        "  - {id: f, title: F, category: y, channels: [in_app], fallback: true}\n"
    )
    with pytest.raises(UnsupportedCatalog, match="caps"):
        check_catalog(load_catalog(path))
    check_catalog(load_catalog(CATALOG))


def test_the_population_reveals_its_tastes_and_is_reproducible(catalog: Catalog) -> None:
    categories = sorted({o.category for o in catalog.everyday_candidates})
    settings = PopulationSettings(customers=300)
    people = make_population(categories, settings, seed=5, prefix="p")
    assert people == make_population(categories, settings, seed=5, prefix="p")
    assert [p.customer_id for p in people[:2]] == ["p-00000", "p-00001"]
    favourite_bought = []
    for person in people:
        tastes = person.tastes.categories
        favourites = sorted(tastes, key=lambda c: tastes[c])[-2:]
        if person.liked:
            assert sorted(person.liked) == sorted(favourites)
        for disliked in person.disliked:
            assert person.tastes.categories[disliked] < 0
        items = [c for basket in person.purchases for c in basket]
        favourite_bought.append(sum(c in favourites for c in items) / len(items))
    # Purchases lean towards the favourites (2 of 8 categories), so affinities reveal them.
    assert np.mean(favourite_bought) > 0.6
    shares = [
        np.mean([bool(getattr(p, field)) for p in people]) for field in ("liked", "personalised")
    ]
    assert 0.5 < shares[0] < 0.7 and 0.85 < shares[1] < 0.95


def test_visits_fall_on_opening_hours_at_the_till() -> None:
    people = make_population(
        ["coffee", "wine"], PopulationSettings(customers=10), seed=1, prefix="v"
    )
    visits = Visits(people, pos_share=0.5)
    rng = np.random.default_rng(2)
    draws = [visits.draw(rng)[1] for _ in range(2000)]
    tills = [m for m in draws if m.touchpoint == "pos"]
    assert 800 < len(tills) < 1200
    assert all(m.local.isoweekday() != 7 and 7 <= m.local.hour < 21 for m in tills)
    assert all(m.store_id for m in tills)
    assert all(m.instant.tzinfo is UTC and m.instant == m.local for m in draws)
    assert {m.daypart for m in draws} == {"morning", "lunch", "afternoon", "evening", "night"}
    assert len({m.season for m in draws}) == 4
