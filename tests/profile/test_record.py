"""The record hash's field grammar: parsing and encoding round-trip."""

from __future__ import annotations

from emma.profile.model import CustomerRef, IdentifierKind
from emma.profile.record import OfferRecord, Record, identifier_field, identifier_of

RAW = {
    "C": "100",
    "U": "200",
    "N": "3",
    "E": "50",
    "S": "-400",
    "W": "900",
    "ccheese": "1500",
    "pgouda": "700",
    "h12": "2000",
    "n2": "1000",
    "r2": "250",
    "skoeln-dom": "3000",
    "ocoffee": ",,,150,1000",
    "#2:card:with:colons": "1",
    "m~abc": "1",
}


def test_a_record_round_trips() -> None:
    record = Record.parse(RAW)
    assert record.encode() == RAW
    assert record.scalars == {"C": "100", "U": "200", "N": "3", "E": "50"}
    assert record.decayed["S"] == -400 and record.decayed["ccheese"] == 1500
    assert record.family("c") == {"cheese": 1500}
    assert record.offers == {"coffee": OfferRecord(dismissed=150, dismissals=1000)}
    assert record.merged == {"~abc"}
    assert record.refs() == [CustomerRef(IdentifierKind.LOYALTY_CARD, "card:with:colons")]


def test_an_identifier_field_keeps_any_value() -> None:
    ref = CustomerRef(IdentifierKind.EMAIL_SHA256, "ab:cd|ef")
    assert identifier_field(ref) == "#4:ab:cd|ef"
    assert identifier_of(identifier_field(ref)) == ref


def test_an_offer_record_leaves_out_zeros() -> None:
    rec = OfferRecord(shown=1_750_000_000, dismissals=0)
    assert rec.encode() == "1750000000,,,,"
    assert OfferRecord.decode(rec.encode()) == rec
    assert OfferRecord(1, 5, 2, 3, 4).recency == 5
