"""Combining two profiles (the pure part of a merge): sums, re-based decay, unions, conflicts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from emma.profile import aggregates, codec
from emma.profile.merge import combine, survivor_first
from emma.profile.model import (
    Channel,
    ConsentChange,
    ConsentStatus,
    Preferences,
    Purpose,
    QuietHours,
)
from emma.profile.record import CAPS, OfferRecord, Record

DAY = 86_400.0
HL = 30 * DAY


def stored(
    customer_id: str,
    record: Mapping[str, str],
    *,
    ledger: Sequence[ConsentChange] = (),
    prefs: Preferences | None = None,
    life: Sequence[str] = (),
    seen: Sequence[str] = (),
) -> codec.Stored:
    return codec.Stored(
        customer_id,
        Record.parse(record),
        {},
        codec.encode_preferences(prefs, ["liked_products", "disliked_products", "language"])
        if prefs
        else {},
        list(life),
        [codec.encode_consent_change(change) for change in ledger],
        list(seen),
        [],
    )


def change(status: ConsentStatus, at: float, channel: Channel, source: str) -> ConsentChange:
    return ConsentChange(Purpose.MARKETING, channel, status, aggregates.from_epoch(at), source)


def test_the_survivor_is_the_older_profile_then_the_smaller_id() -> None:
    assert survivor_first(("b", 1.0), ("a", 2.0)) == ("b", "a")
    assert survivor_first(("b", 1.0), ("a", 1.0)) == ("a", "b")


def test_counts_add_times_take_the_extremes_and_decay_is_rebased() -> None:
    survivor = stored(
        "s",
        {"C": "1000", "P": "5000", "N": "2", "M": "3000", "E": str(60 * DAY), "ccheese": "1000"},
    )
    loser = stored(
        "l", {"C": "500", "P": "9000", "N": "1", "M": "500", "E": str(30 * DAY), "ccheese": "1000"}
    )
    merged = Record.parse(combine(survivor, loser, HL).record)
    assert merged.scalars["C"] == "500"
    assert merged.scalars["P"] == "9000"
    assert (merged.scalars["N"], merged.scalars["M"]) == ("3", "3500")
    assert merged.scalars["E"] == str(int(60 * DAY))
    # The loser's value was one half-life older relative to the new landmark.
    assert merged.decayed["ccheese"] == 1500
    assert merged.merged == {"l"}


def test_offers_keep_the_latest_times_and_add_dismissals() -> None:
    survivor = stored("s", {"C": "1", "E": "0", "oa": OfferRecord(10, 0, 0, 30, 1000).encode()})
    loser = stored("l", {"C": "2", "E": "0", "oa": OfferRecord(20, 5, 0, 25, 500).encode()})
    merged = Record.parse(combine(survivor, loser, HL).record)
    assert merged.offers["a"] == OfferRecord(20, 5, 0, 30, 1500)


def test_capped_families_keep_the_strongest_after_a_merge() -> None:
    cap = CAPS["p"]
    survivor = stored("s", {"C": "1", "E": "0", **{f"ps{i}": str(100 + i) for i in range(cap)}})
    loser = stored("l", {"C": "2", "E": "0", "pstrong": "9999", "pweak": "1"})
    products = Record.parse(combine(survivor, loser, HL).record).family("p")
    assert len(products) == cap
    assert "strong" in products and "weak" not in products and "s0" not in products


def test_consent_ledgers_merge_by_time_and_the_survivor_wins_ties() -> None:
    survivor = stored(
        "s",
        {"C": "1"},
        ledger=[
            change(ConsentStatus.GRANTED, 100, Channel.EMAIL, "web"),
            change(ConsentStatus.GRANTED, 300, Channel.PUSH, "app"),
        ],
    )
    loser = stored(
        "l",
        {"C": "2"},
        ledger=[
            change(ConsentStatus.WITHDRAWN, 200, Channel.UNSPECIFIED, "pos"),
            change(ConsentStatus.DENIED, 300, Channel.PUSH, "call"),
        ],
    )
    merged = combine(survivor, loser, HL)
    sources = [json.loads(text)["source"] for text in merged.ledger]
    assert sources == ["web", "pos", "call", "app"]
    effective = codec.decode_effective(merged.consent)
    states = {channel: state.status for (_, channel), state in effective.items()}
    assert states == {
        Channel.EMAIL: ConsentStatus.WITHDRAWN,  # the later "all channels" withdrawal
        Channel.UNSPECIFIED: ConsentStatus.WITHDRAWN,
        Channel.PUSH: ConsentStatus.GRANTED,  # same time: the survivor's grant counts
    }


def test_preferences_unite_and_the_survivor_wins_conflicts() -> None:
    survivor = stored(
        "s",
        {"C": "1"},
        prefs=Preferences(liked_products=("emmentaler",), disliked_products=("gouda",)),
    )
    loser = stored(
        "l",
        {"C": "2"},
        prefs=Preferences(
            liked_products=("gouda", "brezel"), disliked_products=("emmentaler",), language="en"
        ),
    )
    prefs = codec.decode_preferences(combine(survivor, loser, HL).preferences)
    assert prefs.liked_products == ("emmentaler", "brezel")
    assert prefs.disliked_products == ("gouda",)
    assert prefs.language == "en"  # the survivor said nothing
    assert prefs.quiet_hours is None or prefs.quiet_hours == QuietHours(0, 0, False)


def test_life_events_and_event_ids_are_united() -> None:
    survivor = stored("s", {"C": "1"}, life=["moved|200|a", "birthday|100|"], seen=["1", "2"])
    loser = stored("l", {"C": "2"}, life=["moved|300|b", "birthday|100|"], seen=["2", "3"])
    merged = combine(survivor, loser, HL)
    assert merged.life_events == ["moved|300|b", "moved|200|a", "birthday|100|"]
    assert merged.seen == ["3"]  # what the survivor does not know yet


def test_the_home_store_of_the_later_move_wins() -> None:
    survivor = stored("s", {"C": "1", "H": "a", "T": "200"})
    loser = stored("l", {"C": "2", "H": "b", "T": "300"})
    assert Record.parse(combine(survivor, loser, HL).record).scalars["H"] == "b"
    assert Record.parse(combine(loser, survivor, HL).record).scalars["H"] == "b"


def test_identifiers_and_earlier_merges_are_united() -> None:
    survivor = stored("s", {"C": "1", "#1:s": "1", "mold": "1"})
    loser = stored("l", {"C": "2", "#2:card": "1", "molder": "1", "Y": "s|5", "G": "7"})
    merged = Record.parse(combine(survivor, loser, HL).record)
    assert merged.identifiers == {"#1:s", "#2:card"}
    assert merged.merged == {"old", "older", "l"}
    assert "Y" not in merged.scalars and "G" not in merged.scalars
    assert merged.scalars["K"] == "1"  # consent changed: concurrent consent writes retry
