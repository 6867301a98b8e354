"""Combining two profiles into one: the pure part of a merge (identity.py runs the protocol)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from emma.profile import aggregates, codec, consent, wallet
from emma.profile.model import ConsentState, Preferences
from emma.profile.record import CAPS, DECAYED_FAMILIES, OfferRecord, Record

# Fields the merge sets itself or that must not survive it (see record.py).
_FRESH = frozenset("UGXY")


def survivor_first(a: tuple[str, float], b: tuple[str, float]) -> tuple[str, str]:
    """(survivor, loser) of two (customer id, created) pairs: the older, then the smaller id."""
    first, second = sorted((a, b), key=lambda p: (p[1], p[0]))
    return first[0], second[0]


@dataclasses.dataclass(frozen=True)
class Merged:
    """The survivor's new content: what lua/absorb.lua writes in place of the old, and the
    loser's wallet as ops it applies to the survivor's (wallet.merge_ops)."""

    record: dict[str, str]
    consent: dict[str, str]
    ledger: list[str]
    preferences: dict[str, str]
    life_events: list[str]
    seen: list[str]
    seen_prev: list[str]
    wallet: list[list[Any]]


def combine(survivor: codec.Stored, loser: codec.Stored, half_life_s: float) -> Merged:
    """Everything both profiles hold, as one; the survivor wins where they conflict."""
    ledger, effective = _consent(survivor, loser)
    return Merged(
        record=_record(survivor.record, loser.record, loser.customer_id, half_life_s).encode(),
        consent=codec.encode_effective(effective),
        ledger=ledger,
        preferences=_preferences(survivor.preferences, loser.preferences),
        life_events=_life_events(survivor.life_events, loser.life_events),
        seen=sorted(set(loser.seen) - set(survivor.seen)),
        seen_prev=sorted(set(loser.seen_prev) - set(survivor.seen_prev)),
        wallet=wallet.merge_ops(loser.wallet),
    )


def _record(s: Record, l: Record, loser_id: str, half_life_s: float) -> Record:  # noqa: E741
    out = Record()
    out.scalars = {k: v for k, v in s.scalars.items() if k not in _FRESH}
    _earliest(out, s, l, "C")
    _latest(out, s, l, "P")
    for field in ("N", "M"):
        total = int(s.number(field)) + int(l.number(field))
        if total or field in s.scalars or field in l.scalars:
            out.scalars[field] = str(total)
    # The home store of the later move; the survivor's on a tie.
    if "T" in l.scalars and l.number("T") > s.number("T", float("-inf")):
        out.scalars["H"], out.scalars["T"] = l.scalars.get("H", ""), l.scalars["T"]
    # Consent changed: a consent write that read the old version must start over.
    out.scalars["K"] = str(int(s.number("K")) + 1)

    landmarks = [r.number("E") for r in (s, l) if "E" in r.scalars]
    if landmarks:
        landmark = max(landmarks)
        out.scalars["E"] = str(int(landmark))
        for record in (s, l):
            mine = record.number("E", landmark)
            for field, value in record.decayed.items():
                moved = aggregates.rebase(value, mine, landmark, half_life_s)
                out.decayed[field] = out.decayed.get(field, 0) + moved
            for offer, rec in record.offers.items():
                mine_rec = dataclasses.replace(
                    rec, dismissals=aggregates.rebase(rec.dismissals, mine, landmark, half_life_s)
                )
                out.offers[offer] = _offer(out.offers.get(offer), mine_rec)
    out.decayed = {field: value for field, value in out.decayed.items() if value != 0}
    _cap(out)
    out.scalars.pop("Q", None)
    if counts := out.family_counts():
        out.scalars["Q"] = counts
    out.identifiers = s.identifiers | l.identifiers
    out.merged = s.merged | l.merged | {loser_id}
    return out


def _earliest(out: Record, s: Record, l: Record, field: str) -> None:  # noqa: E741
    values = [r.number(field) for r in (s, l) if field in r.scalars]
    if values:
        out.scalars[field] = str(int(min(values)))


def _latest(out: Record, s: Record, l: Record, field: str) -> None:  # noqa: E741
    values = [r.number(field) for r in (s, l) if field in r.scalars]
    if values:
        out.scalars[field] = str(int(max(values)))


def _offer(a: OfferRecord | None, b: OfferRecord) -> OfferRecord:
    if a is None:
        return b
    return OfferRecord(
        max(a.shown, b.shown),
        max(a.clicked, b.clicked),
        max(a.redeemed, b.redeemed),
        max(a.dismissed, b.dismissed),
        a.dismissals + b.dismissals,
    )


def _cap(record: Record) -> None:
    """Keeps the strongest entries of each capped family, as lua/record.lua does."""
    for family, cap in CAPS.items():
        if family in DECAYED_FAMILIES:
            entries = [(v, f) for f, v in record.decayed.items() if len(f) > 1 and f[0] == family]
            for _, field in sorted(entries)[: max(0, len(entries) - cap)]:
                del record.decayed[field]
        else:
            offers = sorted((rec.recency, offer) for offer, rec in record.offers.items())
            for _, offer in offers[: max(0, len(offers) - cap)]:
                del record.offers[offer]


def _consent(
    survivor: codec.Stored, loser: codec.Stored
) -> tuple[list[str], dict[consent.Slot, ConsentState]]:
    """Both ledgers by time of change; on equal times the survivor's change counts last."""
    entries = [(codec.decode_consent_change(text), 0, text) for text in loser.ledger]
    entries += [(codec.decode_consent_change(text), 1, text) for text in survivor.ledger]
    entries.sort(key=lambda entry: (entry[0].time, entry[1]))
    return [text for _, _, text in entries], consent.fold(change for change, _, _ in entries)


def _preferences(survivor: Mapping[str, str], loser: Mapping[str, str]) -> dict[str, str]:
    s, l = codec.decode_preferences(survivor), codec.decode_preferences(loser)  # noqa: E741
    merged = Preferences(
        liked_products=_union(s.liked_products, l.liked_products, s.disliked_products),
        liked_categories=_union(s.liked_categories, l.liked_categories, s.disliked_categories),
        disliked_products=_union(s.disliked_products, l.disliked_products, s.liked_products),
        disliked_categories=_union(
            s.disliked_categories, l.disliked_categories, s.liked_categories
        ),
        preferred_channels=tuple(dict.fromkeys((*s.preferred_channels, *l.preferred_channels))),
        quiet_hours=s.quiet_hours if "quiet_hours" in survivor else l.quiet_hours,
        language=s.language or l.language,
    )
    fields = set(survivor) | set(loser)
    return codec.encode_preferences(merged, sorted(fields))


def _union(
    mine: tuple[str, ...], theirs: tuple[str, ...], against: tuple[str, ...]
) -> tuple[str, ...]:
    """Mine, then theirs that do not contradict what the survivor said the other way."""
    return tuple(dict.fromkeys((*mine, *(x for x in theirs if x not in against))))


def _life_events(survivor: Sequence[str], loser: Sequence[str]) -> list[str]:
    by_key: dict[tuple[str, str], str] = {}
    for entry in (*loser, *survivor):
        kind, time, _ = entry.split("|", 2)
        by_key[(kind, time)] = entry
    newest = sorted(by_key.values(), key=lambda e: float(e.split("|", 2)[1]), reverse=True)
    return newest[: aggregates.MAX_LIFE_EVENTS]
