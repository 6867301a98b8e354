"""A context resolved in process gives the pipeline the same situation as Resolve's answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emma.common.basket import BasketLine
from emma.common.v1 import common_pb2
from emma.context.config import ContextConfig
from emma.context.server import build_service
from emma.context.service import ContextService
from emma.decision import convert
from emma.decision.domain import DecideInput, Situation, Touchpoint
from emma.decision.situation_view import context_request, situation_of
from emma.runtime.config import load_config
from emma.runtime.errors import InvalidArgument

SERVICE: ContextService = build_service(load_config(ContextConfig, [], {}))
STORES = sorted(store.store_id for store in SERVICE.resolver.stores)

offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=offsets
)
points = st.tuples(st.floats(-60, 70), st.floats(-180, 180))
baskets = st.lists(
    st.builds(
        BasketLine,
        st.text("abc", max_size=3),
        st.sampled_from(["cheese", "wine", " ", "", "bakery"]),
        st.floats(0, 5),
        st.floats(0, 500),
    ),
    max_size=4,
).map(tuple)
requests = st.builds(
    DecideInput,
    customer_kind=st.just(common_pb2.IDENTIFIER_KIND_CUSTOMER_ID),
    customer_value=st.just("c-1"),
    touchpoint=st.sampled_from(Touchpoint),
    request_time=instants,
    store_id=st.sampled_from(["", "no-such-store", *STORES]),
    location=st.none() | points,
    basket=baskets,
    device=st.sampled_from(["", "ios", "till-7"]),
)


def _through_the_answer(request: DecideInput) -> Situation:
    answer = asyncio.run(SERVICE.answer(convert.resolve_request(request), 1.0))
    return convert.situation(answer, request)


def _in_process(request: DecideInput) -> Situation:
    return situation_of(asyncio.run(SERVICE.resolution(context_request(request), 1.0)), request)


@settings(max_examples=300, deadline=None)
@given(requests)
def test_the_situation_equals_the_one_made_from_the_answer(request: DecideInput) -> None:
    try:
        expected = _through_the_answer(request)
    except InvalidArgument as refused:  # an unknown store, a point off the map
        with pytest.raises(InvalidArgument) as also:
            _in_process(request)
        assert str(also.value) == str(refused)
        return
    situation = _in_process(request)
    assert situation == expected
    # Equal datetimes may differ in their offset; the pipeline reads the local clock.
    assert situation.local_time.isoformat() == expected.local_time.isoformat()
    assert situation.local_time.tzinfo == expected.local_time.tzinfo
    assert [type(value) for _, value in situation.features] == [
        type(value) for _, value in expected.features
    ]


def test_a_till_at_a_known_store_gets_its_place_and_basket() -> None:
    request = DecideInput(
        customer_kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID,
        customer_value="c-1",
        touchpoint=Touchpoint.POS,
        request_time=datetime(2026, 12, 7, 11, 30, tzinfo=UTC),
        store_id=STORES[0],
        basket=(BasketLine("p1", "cheese", 1.0, 4.5), BasketLine("p2", "wine", 2.0, 12.0)),
    )
    found = asyncio.run(SERVICE.resolution(context_request(request), 1.0))
    situation = situation_of(found, request)
    assert situation.resolved and situation.store_id == STORES[0]
    features = dict(situation.features)
    assert features["basket_items"] == 2.0 and features["basket_value"] == 16.5
    assert situation.daypart and situation.season and situation.time_zone
