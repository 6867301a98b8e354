"""Effective consent: latest change by event time per purpose and channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from emma.profile import consent
from emma.profile.model import Channel, ConsentChange, ConsentStatus, Purpose

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def change(
    minutes: int,
    status: ConsentStatus,
    channel: Channel = Channel.UNSPECIFIED,
    purpose: Purpose = Purpose.MARKETING,
) -> ConsentChange:
    return ConsentChange(purpose, channel, status, T0 + timedelta(minutes=minutes), "test")


def test_withdrawal_after_grant_wins() -> None:
    states = consent.ordered(
        consent.fold([change(0, ConsentStatus.GRANTED), change(5, ConsentStatus.WITHDRAWN)])
    )
    assert [(s.channel, s.status) for s in states] == [
        (Channel.UNSPECIFIED, ConsentStatus.WITHDRAWN)
    ]


def test_a_late_arriving_older_change_does_not_override_a_newer_one() -> None:
    effective = consent.fold([change(5, ConsentStatus.WITHDRAWN), change(0, ConsentStatus.GRANTED)])
    assert effective[(Purpose.MARKETING, Channel.UNSPECIFIED)].status == ConsentStatus.WITHDRAWN


def test_all_channels_applies_to_every_channel_of_the_purpose_only() -> None:
    effective = consent.fold(
        [
            change(0, ConsentStatus.GRANTED, Channel.EMAIL),
            change(0, ConsentStatus.GRANTED, Channel.PUSH, Purpose.SERVICE),
            change(5, ConsentStatus.WITHDRAWN),
        ]
    )
    states = effective.values()
    assert consent.status_for(states, Purpose.MARKETING, Channel.EMAIL) == ConsentStatus.WITHDRAWN
    assert consent.status_for(states, Purpose.MARKETING, Channel.SMS) == ConsentStatus.WITHDRAWN
    assert consent.status_for(states, Purpose.SERVICE, Channel.PUSH) == ConsentStatus.GRANTED
    assert consent.status_for(states, Purpose.SERVICE, Channel.SMS) == ConsentStatus.UNSPECIFIED


def test_a_channel_granted_after_a_global_withdrawal_is_granted() -> None:
    effective = consent.fold(
        [change(0, ConsentStatus.WITHDRAWN), change(5, ConsentStatus.GRANTED, Channel.EMAIL)]
    )
    states = effective.values()
    assert consent.status_for(states, Purpose.MARKETING, Channel.EMAIL) == ConsentStatus.GRANTED
    assert consent.status_for(states, Purpose.MARKETING, Channel.SMS) == ConsentStatus.WITHDRAWN


_CHANNELS = [Channel.UNSPECIFIED, Channel.EMAIL, Channel.PUSH]
_STATUSES = [ConsentStatus.GRANTED, ConsentStatus.DENIED, ConsentStatus.WITHDRAWN]


@given(
    st.lists(
        st.tuples(st.sampled_from(_CHANNELS), st.sampled_from(_STATUSES)), min_size=1, max_size=8
    ),
    st.randoms(use_true_random=False),
)
def test_the_fold_equals_the_latest_relevant_change_in_any_arrival_order(
    spec: list[tuple[Channel, ConsentStatus]], rng: object
) -> None:
    # Distinct times, so "latest" is unambiguous whatever order the changes arrive in.
    changes = [change(minute, status, channel) for minute, (channel, status) in enumerate(spec)]
    shuffled = list(changes)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    states = consent.fold(shuffled).values()
    for channel in [Channel.EMAIL, Channel.PUSH, Channel.SMS]:
        relevant = [c for c in changes if c.channel in (channel, Channel.UNSPECIFIED)]
        mentioned = any(c.channel in (channel, Channel.UNSPECIFIED) for c in changes)
        expected = max(relevant, key=lambda c: c.time).status if mentioned else None
        got = consent.status_for(states, Purpose.MARKETING, channel)
        assert got == (expected or ConsentStatus.UNSPECIFIED)
