"""Effective consent from the ledger: the latest change by event time per purpose and channel."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from emma.profile.model import Channel, ConsentChange, ConsentState, ConsentStatus, Purpose

# A change for CHANNEL_UNSPECIFIED applies to every channel of its purpose. The effective
# state holds one entry per purpose for "all channels" (when any such change exists) and one
# per channel named in a change; the entry for a channel already accounts for the newer
# "all channels" changes, so a reader looks up the channel first, then "all channels".
Slot = tuple[Purpose, Channel]


def _state(change: ConsentChange, channel: Channel) -> ConsentState:
    return ConsentState(change.purpose, channel, change.status, change.time, change.source)


def apply_change(effective: dict[Slot, ConsentState], change: ConsentChange) -> None:
    """Folds one change into `effective` in place; ties in time go to the later change."""
    purpose = change.purpose
    if change.channel == Channel.UNSPECIFIED:
        for (slot_purpose, channel), state in list(effective.items()):
            if slot_purpose == purpose and state.since <= change.time:
                effective[(purpose, channel)] = _state(change, channel)
        effective.setdefault((purpose, Channel.UNSPECIFIED), _state(change, Channel.UNSPECIFIED))
        return
    slot = (purpose, change.channel)
    current = effective.get(slot)
    if current is None:
        # A new channel entry must still respect a newer "all channels" change.
        everywhere = effective.get((purpose, Channel.UNSPECIFIED))
        if everywhere is not None and everywhere.since > change.time:
            effective[slot] = ConsentState(
                purpose, change.channel, everywhere.status, everywhere.since, everywhere.source
            )
        else:
            effective[slot] = _state(change, change.channel)
    elif current.since <= change.time:
        effective[slot] = _state(change, change.channel)


def fold(changes: Iterable[ConsentChange]) -> dict[Slot, ConsentState]:
    """The effective state of a ledger, in the order the changes were appended."""
    effective: dict[Slot, ConsentState] = {}
    for change in changes:
        apply_change(effective, change)
    return effective


def ordered(effective: Mapping[Slot, ConsentState]) -> tuple[ConsentState, ...]:
    return tuple(effective[slot] for slot in sorted(effective))


def status_for(
    consents: Iterable[ConsentState], purpose: Purpose, channel: Channel
) -> ConsentStatus:
    """What a reader may assume for one purpose and channel; UNSPECIFIED when never asked."""
    by_slot = {(c.purpose, c.channel): c.status for c in consents}
    return by_slot.get(
        (purpose, channel), by_slot.get((purpose, Channel.UNSPECIFIED), ConsentStatus.UNSPECIFIED)
    )
