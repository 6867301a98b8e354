"""The Redis key layout: every key of one customer shares a hash tag, so one Cluster slot."""

from __future__ import annotations

import dataclasses

from emma.profile.model import CustomerRef

# Layout (all customer keys carry the tag {<prefix>:c:<id>}):
# {<prefix>:c:<id>}:profile         hash   scalars: ids, times, RFM, sentiment, life events
# {<prefix>:c:<id>}:ids             set    identifiers, `<kind>:<value>`
# {<prefix>:c:<id>}:cat / :prod     hash   decayed category / product affinities
# {<prefix>:c:<id>}:stores          hash   decayed store visits (home store fallback)
# {<prefix>:c:<id>}:chan            hash   decayed impressions and responses per channel
# {<prefix>:c:<id>}:hours           hash   decayed activity per local hour
# {<prefix>:c:<id>}:prefs           hash   explicit preferences, one JSON value per field
# {<prefix>:c:<id>}:consent         hash   effective consent per `<purpose>:<channel>`
# {<prefix>:c:<id>}:consent:ledger  list   every consent change, JSON, in arrival order
# {<prefix>:c:<id>}:seen            set    event ids applied (idempotency)
# <prefix>:id:<kind>:<value>        string identifier index -> canonical customer id
#
# Index keys live in other slots; they are written before the profile and checked on read.


@dataclasses.dataclass(frozen=True)
class CustomerKeys:
    """Every key held for one canonical customer id."""

    prefix: str
    customer_id: str

    @property
    def tag(self) -> str:
        return "{" + f"{self.prefix}:c:{self.customer_id}" + "}"

    def _key(self, part: str) -> str:
        return f"{self.tag}:{part}"

    @property
    def profile(self) -> str:
        return self._key("profile")

    @property
    def ids(self) -> str:
        return self._key("ids")

    @property
    def categories(self) -> str:
        return self._key("cat")

    @property
    def products(self) -> str:
        return self._key("prod")

    @property
    def stores(self) -> str:
        return self._key("stores")

    @property
    def channels(self) -> str:
        return self._key("chan")

    @property
    def hours(self) -> str:
        return self._key("hours")

    @property
    def preferences(self) -> str:
        return self._key("prefs")

    @property
    def consent(self) -> str:
        return self._key("consent")

    @property
    def consent_ledger(self) -> str:
        return self._key("consent:ledger")

    @property
    def seen(self) -> str:
        return self._key("seen")

    def all(self) -> list[str]:
        """In the order the event script receives them as KEYS (see store.py)."""
        return [
            self.profile,
            self.ids,
            self.categories,
            self.products,
            self.stores,
            self.channels,
            self.hours,
            self.seen,
            self.preferences,
            self.consent,
            self.consent_ledger,
        ]

    def by_part(self) -> dict[str, str]:
        """Short part names used by aggregate operations, mapped to the full keys."""
        return {
            "profile": self.profile,
            "cat": self.categories,
            "prod": self.products,
            "stores": self.stores,
            "chan": self.channels,
            "hours": self.hours,
        }


def customer_keys(prefix: str, customer_id: str) -> CustomerKeys:
    return CustomerKeys(prefix, customer_id)


def identifier_key(prefix: str, ref: CustomerRef) -> str:
    return f"{prefix}:id:{ref.kind.slug}:{ref.value}"
