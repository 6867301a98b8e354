"""A profile read in process gives the pipeline the same view as GetProfile's answer would."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from emma.decision import convert
from emma.decision.profile_view import customer_view_of
from emma.profile import model
from emma.profile.convert import profile_proto
from emma.profile.v1 import profile_pb2
from emma.profile.wallet import OPEN, Entry

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
keys = st.text("abcdefgh-", min_size=1, max_size=6)
scores = st.floats(min_value=-10, max_value=1e6, allow_nan=False)
channels = st.sampled_from(model.Channel)

affinities = st.lists(st.builds(model.Affinity, keys, scores), max_size=6).map(tuple)
consents = st.lists(
    st.builds(
        model.ConsentState,
        st.sampled_from(model.Purpose),
        channels,
        st.sampled_from(model.ConsentStatus),
        times,
        keys,
    ),
    max_size=5,
).map(tuple)
preferences = st.builds(
    model.Preferences,
    liked_products=st.lists(keys, max_size=3).map(tuple),
    liked_categories=st.lists(keys, max_size=3).map(tuple),
    disliked_products=st.lists(keys, max_size=3).map(tuple),
    disliked_categories=st.lists(keys, max_size=3).map(tuple),
    quiet_hours=st.none()
    | st.builds(model.QuietHours, st.integers(0, 2879), st.integers(0, 2879), st.booleans()),
)
offer_history = st.lists(
    st.builds(
        model.OfferHistory,
        st.text("abc", max_size=3),
        last_shown=st.none() | times,
        last_dismissed=st.none() | times,
        dismissals=scores,
    ),
    max_size=4,
).map(tuple)
profiles = st.builds(
    model.Profile,
    customer_id=keys,
    identifiers=st.lists(
        st.builds(model.CustomerRef, st.sampled_from(model.IdentifierKind), keys), max_size=2
    ).map(tuple),
    recent_life_events=st.lists(
        st.builds(model.LifeEventRecord, st.sampled_from(model.LifeEventKind), times, keys),
        max_size=2,
    ).map(tuple),
    rfm=st.builds(model.Rfm, st.none() | times, st.integers(0, 1000), scores),
    category_affinities=affinities,
    product_affinities=affinities,
    channels=st.lists(
        st.builds(model.ChannelStats, channels, scores, scores, scores), max_size=4
    ).map(tuple),
    active_hours=st.sampled_from([(0.0,) * 24, tuple(float(h) for h in range(24)), ()]),
    sentiment=scores,
    preferences=preferences,
    consents=consents,
    segments=st.lists(keys, max_size=3).map(tuple),
    home_store_id=st.text("xyz", max_size=3),
    offer_history=offer_history,
)
wallets = st.lists(
    st.builds(
        Entry,
        keys,
        st.just(OPEN),
        st.text("op", max_size=3),
        st.integers(0, 8),
        st.floats(1.6e9, 1.9e9),
        st.floats(1.6e9, 1.9e9),
        st.just(0.0),
    ),
    max_size=3,
)


def through_the_message(
    profile: model.Profile | None, wallet: list[Entry]
) -> profile_pb2.GetProfileResponse:
    """What ProfileReader.get answers for the same read."""
    if profile is None:
        return profile_pb2.GetProfileResponse(found=False)
    response = profile_pb2.GetProfileResponse(found=True, profile=profile_proto(profile))
    response.profile.wallet.extend(entry.proto() for entry in wallet)
    return response


@settings(max_examples=300, deadline=None)
@given(st.none() | profiles, wallets)
def test_the_view_equals_the_one_made_from_the_message(
    profile: model.Profile | None, wallet: list[Entry]
) -> None:
    expected = convert.customer_view(through_the_message(profile, wallet), NOW)
    assert customer_view_of(profile, wallet, NOW) == expected
    # The decision's read leaves these out (codec.build_profile's `complete`).
    if profile is not None:
        partial = dataclasses.replace(
            profile, identifiers=(), product_affinities=(), recent_life_events=()
        )
        assert customer_view_of(partial, wallet, NOW) == expected


def test_a_recent_purchase_and_an_open_coupon_reach_the_view() -> None:
    profile = model.Profile(
        "c-1", rfm=model.Rfm(NOW - timedelta(days=2), 3, 42.0), segments=("loyal",)
    )
    expires = (NOW + timedelta(days=1)).timestamp()
    coupon = Entry("e-1", OPEN, "emmentaler-20", model.Channel.PUSH, 0.0, expires, 0.0)
    view = customer_view_of(profile, [coupon], NOW)
    assert view.found and view.customer_id == "c-1"
    assert view.days_since_purchase == 2.0
    assert [held.offer_id for held in view.wallet] == ["emmentaler-20"]
    assert view == convert.customer_view(through_the_message(profile, [coupon]), NOW)
