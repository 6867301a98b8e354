"""Validation names the offending field and rejects whole batches."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from emma.common.basket import BasketLine
from emma.profile import validation
from emma.profile.model import (
    Channel,
    ConsentChange,
    ConsentStatus,
    CustomerRef,
    Event,
    IdentifierKind,
    Interaction,
    InteractionKind,
    LocationPing,
    Preferences,
    Purchase,
    Purpose,
    QuietHours,
    SupportContact,
)
from emma.runtime.errors import InvalidArgument
from tests.profile.builders import cid, event, purchase

EVENT_TYPES = "purchase, interaction, offer_response, support_contact, life_event, location"

NOW = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)


def message(call: object) -> str:
    assert callable(call)
    with pytest.raises(InvalidArgument) as caught:
        call()
    return str(caught.value)


def good(event_id: str = "e1") -> Event:
    return purchase(event_id, cid("42"), NOW, ("gouda", "cheese", 3.0))


def test_a_good_batch_passes() -> None:
    validation.validate_batch([good("a"), good("b")], NOW, 10)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (CustomerRef(IdentifierKind.UNSPECIFIED, "42"), "customer.kind: must be set"),
        (CustomerRef(IdentifierKind.CUSTOMER_ID, ""), "customer.value: must not be empty"),
        (CustomerRef(IdentifierKind.CUSTOMER_ID, "  "), "customer.value: must not be empty"),
        (CustomerRef(IdentifierKind.CUSTOMER_ID, "x" * 300), "customer.value: must be at most"),
    ],
)
def test_customer_refs(ref: CustomerRef, expected: str) -> None:
    assert message(lambda: validation.validate_customer(ref)).startswith(expected)


def test_the_batch_size_is_bounded() -> None:
    batch = [good(str(i)) for i in range(3)]
    assert message(lambda: validation.validate_batch(batch, NOW, 2)) == (
        "events: at most 2 per batch"
    )


def bad_batch(bad: Event) -> str:
    return message(lambda: validation.validate_batch([good("a"), good("b"), bad], NOW, 10))


def test_a_missing_payload_names_the_event() -> None:
    assert (
        bad_batch(event("x", cid("1"), NOW, None))
        == "events[2].payload: must be one of " + EVENT_TYPES
    )


def test_a_missing_event_id() -> None:
    assert bad_batch(good("")) == "events[2].event_id: must not be empty"


def test_a_negative_quantity_names_the_line() -> None:
    items = (BasketLine("gouda", "cheese", 1, 1), BasketLine("brezel", "bakery", -1, 1))
    bad = event("x", cid("1"), NOW, Purchase(items, 0.0, "EUR", "", Channel.RECEIPT))
    assert bad_batch(bad) == "events[2].purchase.items[1].quantity: must be >= 0"


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_amounts(amount: float) -> None:
    bad = event("x", cid("1"), NOW, Purchase((), amount, "EUR", "", Channel.RECEIPT))
    assert bad_batch(bad) == "events[2].purchase.amount: must be a finite number"


def test_times_more_than_a_day_ahead_are_rejected_but_drift_is_not() -> None:
    drift = dataclasses.replace(good(), time=NOW + timedelta(hours=23))
    validation.validate_event(drift, NOW, "events[0]")
    ahead = dataclasses.replace(good(), time=NOW + timedelta(days=1, seconds=1))
    assert bad_batch(ahead) == "events[2].time: must not be more than 1 day in the future"


@pytest.mark.parametrize("sentiment", [-1.01, 1.5, float("nan")])
def test_sentiment_outside_the_unit_interval(sentiment: float) -> None:
    bad = event("x", cid("1"), NOW, SupportContact(sentiment, "", Channel.EMAIL))
    assert bad_batch(bad).startswith("events[2].support_contact.sentiment: must be")


def test_an_interaction_needs_a_kind_and_a_target() -> None:
    no_kind = Interaction(InteractionKind.UNSPECIFIED, "gouda", "", Channel.WEB)
    assert (
        bad_batch(event("x", cid("1"), NOW, no_kind)) == "events[2].interaction.kind: must be set"
    )
    no_target = Interaction(InteractionKind.VIEW, "", "", Channel.WEB)
    assert bad_batch(event("x", cid("1"), NOW, no_target)).startswith("events[2].interaction:")


def test_a_location_out_of_range() -> None:
    bad = event("x", cid("1"), NOW, LocationPing(91.0, 0.0, 5.0))
    assert bad_batch(bad) == "events[2].location.location.latitude: must be in [-90, 90]"


def test_preferences() -> None:
    fields = [
        "preferred_channels",
        "quiet_hours",
        "language",
        "liked_products",
        "disliked_products",
    ]

    def check(prefs: Preferences) -> str:
        return message(lambda: validation.validate_preferences(prefs, fields, "preferences"))

    assert check(Preferences(preferred_channels=(Channel.UNSPECIFIED,))) == (
        "preferences.preferred_channels[0]: must be set"
    )
    assert check(Preferences(quiet_hours=QuietHours(0, 1440, True))) == (
        "preferences.quiet_hours.end_minute: must be in [0, 1440)"
    )
    assert check(Preferences(language="German!")).startswith("preferences.language:")
    assert check(Preferences(liked_products=("gouda",), disliked_products=("gouda",))) == (
        "preferences.disliked_products[0]: 'gouda' is also liked"
    )
    # Fields outside the mask are not written, so they are not checked.
    validation.validate_preferences(Preferences(language="German!"), ["liked_products"], "p")


def test_consent_changes() -> None:
    def check(changes: list[ConsentChange]) -> str:
        return message(lambda: validation.validate_consent_changes(changes, NOW))

    ok = ConsentChange(Purpose.MARKETING, Channel.EMAIL, ConsentStatus.GRANTED, NOW, "app")
    validation.validate_consent_changes([ok], NOW)
    assert check([]) == "changes: must not be empty"
    assert check([ok, dataclasses.replace(ok, purpose=Purpose.UNSPECIFIED)]) == (
        "changes[1].purpose: must be set"
    )
    assert check([dataclasses.replace(ok, status=ConsentStatus.UNSPECIFIED)]) == (
        "changes[0].status: must be set"
    )
