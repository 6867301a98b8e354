"""Proto enum values from friendly names ("pos", "push", "loyalty_card") and back."""

from __future__ import annotations

from google.protobuf.descriptor import EnumDescriptor

from emma_client.protos.emma.common.v1 import common_pb2
from emma_client.protos.emma.decision.v1 import decision_pb2
from emma_client.protos.emma.profile.v1 import profile_pb2


def _short_names(enum: EnumDescriptor, prefix: str) -> dict[str, int]:
    """Maps "pos" -> TOUCHPOINT_POS's number; UNSPECIFIED is never a valid choice."""
    return {
        value.name.removeprefix(prefix).lower(): value.number
        for value in enum.values
        if not value.name.endswith("_UNSPECIFIED")
    }


_TOUCHPOINTS = _short_names(common_pb2.Touchpoint.DESCRIPTOR, "TOUCHPOINT_")
_CHANNELS = _short_names(common_pb2.Channel.DESCRIPTOR, "CHANNEL_")
_IDENTIFIER_KINDS = _short_names(common_pb2.IdentifierKind.DESCRIPTOR, "IDENTIFIER_KIND_")


def _lookup(table: dict[str, int], prefix: str, what: str, name: str | int) -> int:
    if isinstance(name, int) and not isinstance(name, bool):
        if name in table.values():
            return name
        raise ValueError(f"unknown {what} number {name}")
    key = str(name).strip().lower().replace("-", "_").removeprefix(prefix.lower())
    try:
        return table[key]
    except KeyError:
        raise ValueError(
            f"unknown {what} {name!r}; expected one of {', '.join(sorted(table))}"
        ) from None


def touchpoint(name: str | int) -> common_pb2.Touchpoint.ValueType:
    """ "pos", "POS" or "TOUCHPOINT_POS" -> TOUCHPOINT_POS; ValueError naming an unknown one."""
    return common_pb2.Touchpoint.ValueType(_lookup(_TOUCHPOINTS, "TOUCHPOINT_", "touchpoint", name))


def channel(name: str | int) -> common_pb2.Channel.ValueType:
    """ "push" or "CHANNEL_PUSH" -> CHANNEL_PUSH; ValueError naming an unknown one."""
    return common_pb2.Channel.ValueType(_lookup(_CHANNELS, "CHANNEL_", "channel", name))


def identifier_kind(name: str | int) -> common_pb2.IdentifierKind.ValueType:
    """ "loyalty_card" -> IDENTIFIER_KIND_LOYALTY_CARD; ValueError naming an unknown one."""
    return common_pb2.IdentifierKind.ValueType(
        _lookup(_IDENTIFIER_KINDS, "IDENTIFIER_KIND_", "identifier kind", name)
    )


def channel_name(value: int) -> str:
    """CHANNEL_PUSH -> "push"; "" for CHANNEL_UNSPECIFIED."""
    return _name(common_pb2.Channel.DESCRIPTOR, "CHANNEL_", value)


def degraded_name(value: int) -> str:
    """DEGRADED_PART_PROFILE -> "profile"."""
    return _name(decision_pb2.DegradedPart.DESCRIPTOR, "DEGRADED_PART_", value)


def wallet_state_name(value: int) -> str:
    """WALLET_OFFER_STATE_OPEN -> "open"."""
    return _name(profile_pb2.WalletOfferState.DESCRIPTOR, "WALLET_OFFER_STATE_", value)


def _name(enum: EnumDescriptor, prefix: str, value: int) -> str:
    known = enum.values_by_number.get(value)
    if known is None:
        # A newer server may send a value this client does not know yet.
        return str(value)
    name = known.name
    return "" if name.endswith("_UNSPECIFIED") else name.removeprefix(prefix).lower()


TOUCHPOINT_NAMES = tuple(sorted(_TOUCHPOINTS))
CHANNEL_NAMES = tuple(sorted(_CHANNELS))
IDENTIFIER_KIND_NAMES = tuple(sorted(_IDENTIFIER_KINDS))
