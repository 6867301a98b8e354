"""The record hash of one customer: its compact field grammar, parsed and encoded."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from emma.profile.model import CustomerRef, IdentifierKind

# Short field names keep a record in Redis's compact listpack encoding (at most 128
# fields of at most 64 bytes each by default), which is most of the memory it needs.
#
# Scalars (one capital letter):
#   C created, U updated (last write), P last purchase (epoch seconds)
#   N purchase count, M total spend in thousandths
#   E landmark of the decayed values (epoch seconds); S, W decayed sentiment sum and weight
#   H, T home store from the latest move and that move's time
#   G version (every write), K consent version (consent writes)
#   Q entries per capped family, e.g. "p20c16s3o5", so a family below its cap takes a
#     newcomer without a scan
#   X redirect: the customer id this record now points to (no other fields then)
#   Y merge in progress: "<survivor>|<started>"; the record is frozen until the merge ends
# Families (a lower-case letter or '#' before the key):
#   c<category> p<product> s<store> h<hour> n<channel> r<channel>   decayed, fixed point
#       (n: impressions, r: responses; channels by their enum number)
#   o<offer>   "<shown>,<clicked>,<redeemed>,<dismissed>,<decayed dismissals>", 0 left out
#   #<kind>:<value>   an identifier of this profile (kind by its enum number)
#   m<customer id>    a profile merged into this one (makes the merge idempotent)

SCALE = 1000  # decayed values and amounts are integers in thousandths
DECAYED_FAMILIES = frozenset("cpshnr")
DECAYED_SCALARS = frozenset("SW")
CATEGORY, PRODUCT, STORE, HOUR, IMPRESSIONS, RESPONSES = "c", "p", "s", "h", "n", "r"
OFFER, IDENTIFIER, MERGED = "o", "#", "m"
# Most entries kept per family; a weaker entry gives way to a stronger newcomer.
CAPS: Mapping[str, int] = {PRODUCT: 20, CATEGORY: 16, STORE: 4, OFFER: 16}


def identifier_field(ref: CustomerRef) -> str:
    return f"{IDENTIFIER}{int(ref.kind)}:{ref.value}"


def identifier_of(field: str) -> CustomerRef:
    kind, _, value = field[1:].partition(":")
    return CustomerRef(IdentifierKind(int(kind)), value)


@dataclasses.dataclass(frozen=True)
class OfferRecord:
    """Times (epoch seconds, 0 for never) and the decayed dismissal count, fixed point."""

    shown: int = 0
    clicked: int = 0
    redeemed: int = 0
    dismissed: int = 0
    dismissals: int = 0

    @property
    def recency(self) -> int:
        return max(self.shown, self.clicked, self.redeemed, self.dismissed)

    def encode(self) -> str:
        values = (self.shown, self.clicked, self.redeemed, self.dismissed, self.dismissals)
        return ",".join(str(v) if v else "" for v in values)

    @staticmethod
    def decode(text: str) -> OfferRecord:
        shown, clicked, redeemed, dismissed, dismissals = (int(p or 0) for p in text.split(","))
        return OfferRecord(shown, clicked, redeemed, dismissed, dismissals)


@dataclasses.dataclass
class Record:
    """A record hash, parsed: scalars as stored, decayed values, offers, identifiers."""

    scalars: dict[str, str] = dataclasses.field(default_factory=dict)
    # Family letter + key (or S/W) -> fixed-point value relative to the landmark E.
    decayed: dict[str, int] = dataclasses.field(default_factory=dict)
    offers: dict[str, OfferRecord] = dataclasses.field(default_factory=dict)
    identifiers: set[str] = dataclasses.field(default_factory=set)
    merged: set[str] = dataclasses.field(default_factory=set)

    @staticmethod
    def parse(raw: Mapping[str, str]) -> Record:
        record = Record()
        for field, value in raw.items():
            family = field[0]
            if len(field) == 1:
                if family in DECAYED_SCALARS:
                    record.decayed[field] = int(value)
                else:
                    record.scalars[field] = value
            elif family in DECAYED_FAMILIES:
                record.decayed[field] = int(value)
            elif family == OFFER:
                record.offers[field[1:]] = OfferRecord.decode(value)
            elif family == IDENTIFIER:
                record.identifiers.add(field)
            elif family == MERGED:
                record.merged.add(field[1:])
        return record

    def encode(self) -> dict[str, str]:
        raw = dict(self.scalars)
        raw.update((field, str(value)) for field, value in self.decayed.items())
        raw.update((OFFER + offer, rec.encode()) for offer, rec in self.offers.items())
        raw.update((field, "1") for field in self.identifiers)
        raw.update((MERGED + cid, "1") for cid in self.merged)
        return raw

    def number(self, field: str, default: float = 0.0) -> float:
        value = self.scalars.get(field)
        return default if value is None else float(value)

    def time(self, field: str) -> float | None:
        value = self.scalars.get(field)
        return None if value is None else float(value)

    def family_counts(self) -> str:
        """The Q field: entries per capped family, in CAPS order, zero counts left out."""
        sizes = {letter: len(self.family(letter)) for letter in CAPS if letter != OFFER}
        sizes[OFFER] = len(self.offers)
        return "".join(f"{letter}{sizes[letter]}" for letter in CAPS if sizes[letter])

    def family(self, letter: str) -> dict[str, int]:
        """The decayed entries of one family, keyed without the family letter."""
        return {f[1:]: v for f, v in self.decayed.items() if len(f) > 1 and f[0] == letter}

    def refs(self) -> list[CustomerRef]:
        return sorted((identifier_of(f) for f in self.identifiers), key=lambda r: (r.kind, r.value))
