"""A profile read in process as the pipeline sees it, without building GetProfile's answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from emma.decision.convert import CHANNELS, PURPOSES, STATUSES, ranked_affinities
from emma.decision.domain import Channel, ConsentStatus, CustomerView, Purpose, QuietHours
from emma.decision.wallet import HeldOffer
from emma.profile.model import Profile
from emma.profile.wallet import OPEN, Entry

# convert's tables, keyed by the enum numbers the profile's model shares with the protos.
_CHANNELS: dict[int, Channel] = {int(number): channel for number, channel in CHANNELS.items()}
_PURPOSES: dict[int, Purpose] = {int(number): purpose for number, purpose in PURPOSES.items()}
_STATUSES: dict[int, ConsentStatus] = {int(number): status for number, status in STATUSES.items()}


def _channel(number: int) -> Channel | None:
    return _CHANNELS.get(number)


def customer_view_of(
    profile: Profile | None, wallet: Sequence[Entry], now: datetime
) -> CustomerView:
    """What convert.customer_view makes of the GetProfile answer that `profile` and its open
    `wallet` entries would give (ProfileReader.get), field for field; the message itself
    costs more to build and read than the rest of the read (tests/decision/test_profile_view.py
    holds the two equal)."""
    if profile is None:
        return CustomerView(available=True, found=False)
    consents: dict[tuple[Purpose, Channel | None], ConsentStatus] = {}
    for state in profile.consents:
        purpose, status = _PURPOSES.get(state.purpose.value), _STATUSES.get(state.status.value)
        if purpose is None or status is None:
            continue
        consents[(purpose, _channel(state.channel.value))] = status
    last = profile.rfm.last_purchase_at
    preferences = profile.preferences
    quiet = preferences.quiet_hours
    return CustomerView(
        available=True,
        found=True,
        consents=consents,
        disliked_products=frozenset(preferences.disliked_products),
        disliked_categories=frozenset(preferences.disliked_categories),
        liked_products=frozenset(preferences.liked_products),
        liked_categories=frozenset(preferences.liked_categories),
        category_affinities=ranked_affinities(
            (a.key, a.score) for a in profile.category_affinities
        ),
        days_since_purchase=None
        if last is None
        else max(0.0, (now - last).total_seconds() / 86400),
        purchase_count=profile.rfm.purchase_count,
        total_spend=profile.rfm.total_spend,
        segments=tuple(profile.segments),
        channel_responsiveness={
            channel: s.responsiveness
            for s in profile.channels
            if (channel := _channel(s.channel.value)) is not None
        },
        sentiment=profile.sentiment,
        home_store_id=profile.home_store_id,
        customer_id=profile.customer_id,
        quiet_hours=(
            QuietHours(quiet.start_minute % 1440, quiet.end_minute % 1440)
            if quiet is not None and quiet.enabled
            else None
        ),
        active_hours=tuple(profile.active_hours) if len(profile.active_hours) == 24 else (),
        last_dismissed={
            offer.offer_id: offer.last_dismissed
            for offer in profile.offer_history
            if offer.offer_id and offer.last_dismissed is not None
        },
        wallet=tuple(
            HeldOffer(
                offer_id=entry.offer_id,
                event_id=entry.event_id,
                channel=_channel(entry.channel),
                expires_at=datetime.fromtimestamp(entry.expires, UTC),
            )
            for entry in wallet
            if entry.state == OPEN and entry.offer_id
        ),
    )
