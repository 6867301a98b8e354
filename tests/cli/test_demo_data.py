"""The demo customers file: well-formed, in the shared vocabulary, turned into valid requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from google.protobuf.json_format import MessageToDict

from emma.common.v1 import common_pb2
from emma.demo.customers import (
    consent_request,
    events,
    identifier_refs,
    load_demo_data,
    preferences_request,
)
from emma.profile.v1 import profile_pb2
from emma_client import customer_ref

CATEGORIES = {"cheese", "wine", "bakery", "coffee", "seasonal", "fruit_veg", "drinks"}
PRODUCTS = {
    "emmentaler", "gouda", "bergkaese", "camembert", "riesling", "spaetburgunder", "gluehwein",
    "sekt", "brezel", "vollkornbrot", "stollen", "lebkuchen", "espresso_beans", "filter_coffee",
    "spargel", "erdbeeren", "apfelschorle",
}  # fmt: skip
STORES = {"berlin-mitte", "muenchen-marienplatz", "hamburg-altona", "koeln-dom", "leipzig-zentrum"}
NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)


def test_five_customers_with_distinct_tastes() -> None:
    data = load_demo_data()
    assert [c.name for c in data.customers] == ["anna", "ben", "clara", "david", "emil"]
    anna = data.customer("anna")
    assert anna.identifiers["loyalty_card"] == "1001"
    assert anna.customer_id == "c-anna"
    assert "gouda" in anna.preferences["disliked_products"]
    assert "emmentaler" in anna.preferences["liked_products"]
    emil = data.customer("emil")
    assert not (emil.purchases or emil.consent or emil.preferences or emil.identifiers)


def test_everything_uses_the_shared_vocabulary() -> None:
    data = load_demo_data()
    for customer in data.customers:
        for event in events(customer, NOW):
            if event.HasField("purchase"):
                assert event.purchase.store_id in STORES
                lines = [(i.product_id, i.category) for i in event.purchase.items]
            else:
                lines = [(event.interaction.product_id, event.interaction.category)]
            for product, category in lines:
                assert product in PRODUCTS
                assert category in CATEGORIES
        prefs = customer.preferences
        assert set(prefs.get("liked_products", [])) <= PRODUCTS
        assert set(prefs.get("disliked_products", [])) <= PRODUCTS
        assert set(prefs.get("liked_categories", [])) <= CATEGORIES
    for scenario in data.scenarios:
        assert not scenario.store or scenario.store in STORES


def test_scenarios_cover_every_customer_and_several_touchpoints() -> None:
    data = load_demo_data()
    known = set()
    for customer in data.customers:
        known.add(customer_ref(("customer_id", customer.customer_id)).SerializeToString())
        known.update(ref.SerializeToString() for ref in identifier_refs(customer))
    named = {customer_ref(s.customer).SerializeToString() for s in data.scenarios}
    assert named <= known
    assert {s.touchpoint for s in data.scenarios} >= {"app", "pos", "web"}
    assert all(s.store for s in data.scenarios if s.touchpoint == "pos")


def test_events_have_fixed_ids_and_past_times() -> None:
    anna = load_demo_data().customer("anna")
    first, again = events(anna, NOW), events(anna, NOW)
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert len({e.event_id for e in first}) == len(first) == 4
    assert all(e.event_id.startswith("demo-anna-") for e in first)
    assert all(e.time.ToDatetime(tzinfo=UTC) < NOW for e in first)
    purchase = first[0].purchase
    assert (purchase.items[0].product_id, purchase.items[0].quantity) == ("emmentaler", 1.0)
    assert purchase.currency == "EUR"
    assert first[0].customer == customer_ref("customer_id:c-anna")


def test_an_email_is_only_ever_sent_hashed() -> None:
    clara = load_demo_data().customer("clara")
    refs = identifier_refs(clara)
    email = [r for r in refs if r.kind == common_pb2.IDENTIFIER_KIND_EMAIL_SHA256]
    assert email[0].value == hashlib.sha256(b"clara@example.org").hexdigest()
    assert all("@" not in r.value for r in refs)


def test_consent_requests() -> None:
    data = load_demo_data()
    ben = consent_request(data.customer("ben"), NOW)
    assert [(c.purpose, c.channel, c.status) for c in ben.changes] == [
        (profile_pb2.PURPOSE_PERSONALISATION, 0, profile_pb2.CONSENT_STATUS_GRANTED),
        (profile_pb2.PURPOSE_MARKETING, 0, profile_pb2.CONSENT_STATUS_DENIED),
    ]
    anna = consent_request(data.customer("anna"), NOW)
    marketing = {c.channel for c in anna.changes if c.purpose == profile_pb2.PURPOSE_MARKETING}
    assert {common_pb2.CHANNEL_PUSH, common_pb2.CHANNEL_EMAIL} <= marketing


def test_preferences_request_masks_exactly_the_given_fields() -> None:
    request = preferences_request(load_demo_data().customer("anna"))
    assert set(request.update_mask.paths) == {
        "language", "liked_products", "liked_categories", "disliked_products",
        "preferred_channels",
    }  # fmt: skip
    assert list(request.preferences.disliked_products) == ["gouda"]
    ben = preferences_request(load_demo_data().customer("ben"))
    assert "quiet_hours" in ben.update_mask.paths
    assert MessageToDict(ben.preferences.quiet_hours) == {
        "startMinute": 22 * 60,
        "endMinute": 7 * 60,
        "enabled": True,
    }
