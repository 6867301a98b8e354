"""The Redis key layout: each customer's keys share one hash tag, so one Cluster slot."""

from __future__ import annotations

import dataclasses
import hashlib
import math

from emma.profile.model import CustomerRef, IdentifierKind

# Every customer id `<cid>` owns up to eight keys, all tagged {<prefix>:c:<cid>}:
#   {<prefix>:c:<cid>}        hash    the record: scalars, aggregates, identifiers, offers
#   {<prefix>:c:<cid>}:k      hash    effective consent per `<purpose>:<channel>`
#   {<prefix>:c:<cid>}:kl     list    the consent ledger, in arrival order
#   {<prefix>:c:<cid>}:f      hash    explicit preferences, one JSON value per field
#   {<prefix>:c:<cid>}:v      list    recent life events, newest first
#   {<prefix>:c:<cid>}:e<w>   set     hashes of event ids applied in replay window w
#   {<prefix>:c:<cid>}:w      hash    the offer wallet (wallet.py; not among script KEYS)
#
# Every identifier has a home: the record of the customer id it names (a customer id
# names itself; any other identifier names `~` + a hash of itself). The home holds the
# profile the identifier created, or a redirect to the profile it was linked to, so an
# identifier resolves without an index in another slot (see docs/profile.md).

DERIVED_ID_MARK = "~"
_DERIVED_ID_BYTES = 12
# The order of KEYS in every customer script (lua/common.lua names them).
SUFFIXES = ("", ":k", ":kl", ":f", ":v")


def home_id(ref: CustomerRef) -> str:
    """The customer id whose record is the home of `ref`."""
    if ref.kind == IdentifierKind.CUSTOMER_ID:
        return ref.value
    digest = hashlib.blake2b(ref.encode().encode(), digest_size=_DERIVED_ID_BYTES)
    return DERIVED_ID_MARK + digest.hexdigest()


def is_derived(customer_id: str) -> bool:
    """Whether `customer_id` was derived from another identifier rather than given by a CRM."""
    return customer_id.startswith(DERIVED_ID_MARK)


def replay_window(now_s: float, window_s: float) -> int:
    """The index of the replay window `now_s` falls in."""
    return math.floor(now_s / window_s)


@dataclasses.dataclass(frozen=True)
class CustomerKeys:
    """The keys of one customer id, with the event-id sets of replay windows w and w-1."""

    prefix: str
    customer_id: str
    window: int

    @property
    def tag(self) -> str:
        return "{" + f"{self.prefix}:c:{self.customer_id}" + "}"

    @property
    def main(self) -> str:
        return self.tag

    @property
    def consent(self) -> str:
        return self.tag + ":k"

    @property
    def consent_ledger(self) -> str:
        return self.tag + ":kl"

    @property
    def preferences(self) -> str:
        return self.tag + ":f"

    @property
    def life_events(self) -> str:
        return self.tag + ":v"

    def seen(self, window: int) -> str:
        return f"{self.tag}:e{window}"

    def script_keys(self) -> list[str]:
        """KEYS of every customer script: the five data keys, then windows w and w-1."""
        return [
            *(self.tag + suffix for suffix in SUFFIXES),
            self.seen(self.window),
            self.seen(self.window - 1),
        ]


def customer_keys(prefix: str, customer_id: str, window: int = 0) -> CustomerKeys:
    return CustomerKeys(prefix, customer_id, window)
