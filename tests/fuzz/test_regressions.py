"""Requests the fuzz tests found answered with UNKNOWN (or written in part); each now gets
INVALID_ARGUMENT naming the field and writes nothing."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
import redis
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2
from emma.decision import convert
from emma.decision.v1 import decision_pb2
from emma.profile.v1 import profile_pb2
from emma.runtime.errors import InvalidArgument
from tests.fuzz.checks import changed_keys, snapshot

CARD = common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_LOYALTY_CARD, value="4711")
# A card the fuzz strategies never generate (they share this session's Redis): a wallet
# read for it holds only what its own test wrote.
OWN_CARD = common_pb2.CustomerRef(
    kind=common_pb2.IDENTIFIER_KIND_LOYALTY_CARD, value="regression-wallet"
)
NOW = int(time.time())


def refused(method: Any, request: Any, client: redis.Redis) -> str:
    """Calls; asserts INVALID_ARGUMENT and that nothing was written; returns the message."""
    before = snapshot(client)
    with pytest.raises(grpc.RpcError) as caught:
        method(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert changed_keys(before, snapshot(client)) == []
    return str(caught.value.details())


def _shown(
    event_id: str, customer: common_pb2.CustomerRef = CARD, **changes: Any
) -> profile_pb2.Event:
    response = profile_pb2.OfferResponse(
        kind=profile_pb2.OFFER_RESPONSE_KIND_SHOWN,
        offer_id="emmentaler-20",
        decision_event_id=f"d-{event_id}",
        channel=common_pb2.CHANNEL_PUSH,
    )
    event = profile_pb2.Event(event_id=event_id, customer=customer, offer_response=response)
    for name, value in changes.items():
        target = event.offer_response if name == "expires_at" else event
        getattr(target, name).CopyFrom(value)
    return event


@pytest.mark.parametrize(
    ("event", "field"),
    [
        # The wallet read expires_at after the profile was written: UNKNOWN, written in part.
        (_shown("e1", expires_at=Timestamp(seconds=2**62)), "events[0].offer_response.expires_at"),
        (
            _shown("e2", expires_at=Timestamp(seconds=NOW, nanos=-5)),
            "events[0].offer_response.expires_at",
        ),
        # Nanos outside [0, 10^9) passed the checks, then failed in the wallet.
        (_shown("e3", time=Timestamp(seconds=NOW, nanos=-1)), "events[0].time"),
        (_shown("e4", time=Timestamp(seconds=NOW - 60, nanos=10**9)), "events[0].time"),
    ],
)
def test_record_events_with_invalid_timestamps(
    profile_stub: Any, redis_client: redis.Redis, event: profile_pb2.Event, field: str
) -> None:
    request = profile_pb2.RecordEventsRequest(events=[event])
    assert refused(profile_stub.RecordEvents, request, redis_client).startswith(f"{field}: ")


def test_a_valid_expiry_still_opens_a_wallet_entry(profile_stub: Any) -> None:
    event = _shown("e5", OWN_CARD, expires_at=Timestamp(seconds=NOW + 86_400))
    profile_stub.RecordEvents(profile_pb2.RecordEventsRequest(events=[event]), timeout=30)
    request = profile_pb2.GetProfileRequest(customer=OWN_CARD)
    profile = profile_stub.GetProfile(request, timeout=30)
    assert [offer.event_id for offer in profile.profile.wallet] == ["d-e5"]


def test_update_consent_with_invalid_nanos(profile_stub: Any, redis_client: redis.Redis) -> None:
    change = profile_pb2.ConsentChange(
        purpose=profile_pb2.PURPOSE_MARKETING,
        status=profile_pb2.CONSENT_STATUS_GRANTED,
        time=Timestamp(seconds=NOW, nanos=-1),
    )
    request = profile_pb2.UpdateConsentRequest(customer=CARD, changes=[change])
    message = refused(profile_stub.UpdateConsent, request, redis_client)
    assert message.startswith("changes[0].time: ")


def _decide(**fields: Any) -> decision_pb2.DecideRequest:
    fields = {"store_id": "berlin-mitte", **fields}
    return decision_pb2.DecideRequest(customer=CARD, touchpoint=common_pb2.TOUCHPOINT_POS, **fields)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_decide(request_time=Timestamp(seconds=2**62)), "request_time"),
        (_decide(request_time=Timestamp(seconds=NOW, nanos=-1)), "request_time"),
        # A valid Timestamp, but schedules computed from it overflowed datetime.
        (_decide(request_time=Timestamp(seconds=253_402_300_799)), "request_time"),
        (_decide(budget=Duration(seconds=2**62)), "budget"),
        (_decide(budget=Duration(seconds=1, nanos=-5)), "budget"),
        (_decide(store_id="x" * 100_000), "store_id"),
        (_decide(device="x" * 257), "device"),
        (_decide(request_id="x" * 257), "request_id"),
        (
            _decide(basket=common_pb2.Basket(items=[common_pb2.BasketItem(category="c")] * 1_001)),
            "basket.items",
        ),
        (
            _decide(basket=common_pb2.Basket(items=[common_pb2.BasketItem(product_id="p" * 257)])),
            "basket.items[0].product_id",
        ),
        (
            decision_pb2.DecideRequest(
                customer=CARD,
                touchpoint=common_pb2.TOUCHPOINT_TRIGGER,
                moment=decision_pb2.Moment(rule="r", offer_ids=["o"] * 1_001),
            ),
            "moment.offer_ids",
        ),
    ],
)
def test_decide_refuses_out_of_range_requests(
    decision_stub: Any, redis_client: redis.Redis, request_: Any, field: str
) -> None:
    assert refused(decision_stub.Decide, request_, redis_client).startswith(f"{field}: ")


def test_decide_accepts_the_edges_of_its_ranges(decision_stub: Any) -> None:
    answer = decision_stub.Decide(
        _decide(
            request_time=Timestamp(seconds=NOW - 3_600, nanos=999_999_999),
            budget=Duration(seconds=2, nanos=500_000_000),
            device="d" * 256,
            basket=common_pb2.Basket(items=[common_pb2.BasketItem(category="cheese")] * 1_000),
        ),
        timeout=30,
    )
    assert answer.event_id


@pytest.mark.parametrize("rpc", ["Activate", "Reward"])
def test_feedback_refuses_invalid_times(
    decision_stub: Any, redis_client: redis.Redis, rpc: str
) -> None:
    request_type = getattr(decision_pb2, f"{rpc}Request")
    request = request_type(event_id="no-such-decision", time=Timestamp(seconds=2**62))
    assert refused(getattr(decision_stub, rpc), request, redis_client).startswith("time: ")


def test_feedback_time_checks_the_timestamp() -> None:
    with pytest.raises(InvalidArgument, match=r"^time: "):
        convert.feedback_time(decision_pb2.RewardRequest(time=Timestamp(seconds=2**62)))
    stamp = Timestamp(seconds=NOW)
    assert convert.feedback_time(decision_pb2.ActivateRequest(time=stamp)).timestamp() == NOW


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x08", b"\x0a\x05\x12\x03\xff\xfe\xfd"])
def test_bytes_that_are_no_message_are_the_callers_error(
    channels: dict[str, grpc.Channel], redis_client: redis.Redis, data: bytes
) -> None:
    """Was UNKNOWN: gRPC's parse error (corrupt wire format, a string that is not UTF-8)."""
    unary = channels["profile"].unary_unary(
        "/emma.profile.v1.ProfileService/RecordEvents",
        request_serializer=bytes,
        response_deserializer=bytes,
    )
    stream = channels["profile"].stream_unary(
        "/emma.profile.v1.ProfileService/RecordEventStream",
        request_serializer=bytes,
        response_deserializer=bytes,
    )
    valid = profile_pb2.RecordEventStreamRequest(events=[_shown("e6")]).SerializeToString()
    for call, request in ((unary, data), (stream, iter([data, valid]))):
        before = snapshot(redis_client)
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "request: not a valid message: " in str(caught.value.details())
        assert changed_keys(before, snapshot(redis_client)) == []


MAX_FLOAT = 1.7976931348623157e308


def test_a_basket_whose_sum_overflows_is_refused(context_stub: Any) -> None:
    """Was UNKNOWN: 'intermediate overflow in fsum' summing the basket."""
    line = common_pb2.BasketItem(category="cheese", quantity=1, amount=MAX_FLOAT)
    request = context_pb2.ResolveRequest(basket=common_pb2.Basket(items=[line, line]))
    with pytest.raises(grpc.RpcError) as caught:
        context_stub.Resolve(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(caught.value.details()).startswith("basket.items[0].amount: ")


@pytest.mark.parametrize(
    ("purchase", "field"),
    [
        # Was UNKNOWN: the amount in thousandths overflowed converting infinity to an integer.
        (
            profile_pb2.Purchase(
                items=[common_pb2.BasketItem(product_id="p", amount=MAX_FLOAT)] * 2
            ),
            "events[0].purchase.items[0].amount",
        ),
        (profile_pb2.Purchase(amount=MAX_FLOAT), "events[0].purchase.amount"),
    ],
)
def test_purchases_beyond_the_largest_amount_are_refused(
    profile_stub: Any, redis_client: redis.Redis, purchase: profile_pb2.Purchase, field: str
) -> None:
    event = profile_pb2.Event(event_id="big", customer=CARD, purchase=purchase)
    request = profile_pb2.RecordEventsRequest(events=[event])
    assert refused(profile_stub.RecordEvents, request, redis_client).startswith(f"{field}: ")


def test_decide_refuses_a_basket_line_beyond_the_largest_amount(
    decision_stub: Any, redis_client: redis.Redis
) -> None:
    line = common_pb2.BasketItem(category="cheese", quantity=1, amount=-MAX_FLOAT)
    request = _decide(basket=common_pb2.Basket(items=[line]))
    message = refused(decision_stub.Decide, request, redis_client)
    assert message.startswith("basket.items[0].amount: ")
