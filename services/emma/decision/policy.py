"""The contact policy of a catalog: frequency caps, dismissal cool-downs and quiet hours."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from emma.decision.domain import Channel

_DURATION = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """ "90m", "12h", "7d", "2w" -> timedelta; raises ValueError for anything else."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclasses.dataclass(frozen=True)
class Cap:
    """At most `limit` contacts on `channels` (every channel when empty) within `window`."""

    name: str
    limit: int
    window: timedelta
    channels: frozenset[Channel] = frozenset()

    def covers(self, channel: Channel) -> bool:
        return not self.channels or channel in self.channels


@dataclasses.dataclass(frozen=True)
class ContactPolicy:
    caps: tuple[Cap, ...] = ()
    # An offer the customer dismissed is not offered again for this long; None: no cool-down.
    offer_cooldown: timedelta | None = None
    # ... nor any offer of the dismissed offer's category for this long.
    category_cooldown: timedelta | None = None
    # Channels that interrupt the customer: inside quiet hours they are scheduled for later.
    quiet_channels: frozenset[Channel] = frozenset({Channel.PUSH})
    # How far ahead a send may be scheduled; beyond it the action is dropped.
    quiet_horizon: timedelta = timedelta(hours=24)

    def caps_for(self, channel: Channel) -> tuple[Cap, ...]:
        return tuple(cap for cap in self.caps if cap.covers(channel))

    def capped(self, channel: Channel) -> bool:
        """Whether contacts on this channel are counted (some cap covers it)."""
        return any(cap.covers(channel) for cap in self.caps)

    @property
    def longest_window(self) -> timedelta:
        return max((cap.window for cap in self.caps), default=timedelta(0))


DEFAULT_POLICY = ContactPolicy()


@dataclasses.dataclass(frozen=True)
class Contact:
    channel: Channel
    # Epoch seconds of the (possibly scheduled) delivery.
    at: float


@dataclasses.dataclass(frozen=True)
class ContactHistory:
    """A customer's recorded contacts within the policy's longest window (and any scheduled)."""

    contacts: tuple[Contact, ...] = ()

    def count(self, cap: Cap, at: datetime) -> int:
        """Contacts the cap counts for a new contact at `at`: those after `at - window`.

        Scheduled contacts later than `at` count too, so a send queued for tomorrow
        morning still uses today's slot.
        """
        since = (at - cap.window).timestamp()
        return sum(1 for c in self.contacts if c.at > since and cap.covers(c.channel))

    def exceeded(self, caps: Iterable[Cap], at: datetime) -> Cap | None:
        """The first cap a new contact at `at` would break, or None."""
        return next((cap for cap in caps if self.count(cap, at) >= cap.limit), None)


NO_CONTACTS = ContactHistory()
