"""The SDK's friendly arguments become exactly the proto requests the services expect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2
from emma_client import Decision, Reason, customer_ref
from emma_client.requests import decide_request, reward_request

LOYALTY = common_pb2.IDENTIFIER_KIND_LOYALTY_CARD


def test_customer_in_every_accepted_form() -> None:
    expected = common_pb2.CustomerRef(kind=LOYALTY, value="1234")
    assert customer_ref(("loyalty_card", "1234")) == expected
    assert customer_ref("loyalty_card:1234") == expected
    assert customer_ref(loyalty_card="1234") == expected
    assert customer_ref(expected) is expected
    # Only the first colon separates kind and value.
    assert customer_ref("customer_id:c:1").value == "c:1"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "exactly one customer"),
        (("loyalty_card:1",), {"customer_id": "c-1"}, "exactly one customer"),
        ((), {"customer_id": "a", "loyalty_card": "b"}, "exactly one customer"),
        (("1234",), {}, "expected KIND:VALUE"),
        (("loyalty_card:",), {}, "must not be empty"),
        (("passport:X1",), {}, "unknown identifier kind 'passport'"),
    ],
)
def test_bad_customers_are_rejected(args: tuple[str], kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        customer_ref(*args, **kwargs)


def test_decide_request_from_friendly_arguments() -> None:
    moment = datetime(2026, 12, 24, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    request = decide_request(
        ("loyalty_card", "1001"),
        touchpoint="pos",
        store_id="berlin-mitte",
        location=(52.52, 13.41),
        basket=[
            ("emmentaler", "cheese", 1, 4.99),
            "brezel:bakery:2:1.40",
            {"product_id": "riesling", "category": "wine", "quantity": 1.0, "amount": 8.99},
        ],
        budget_ms=75.5,
        allowed_channels=["receipt", "CASHIER_PROMPT"],
        deferred_activation=True,
        request_time=moment,
        request_id="r-1",
        device="till",
    )
    assert request.customer == common_pb2.CustomerRef(kind=LOYALTY, value="1001")
    assert request.touchpoint == common_pb2.TOUCHPOINT_POS
    assert request.store_id == "berlin-mitte"
    assert (request.location.latitude, request.location.longitude) == (52.52, 13.41)
    assert [item.product_id for item in request.basket.items] == [
        "emmentaler",
        "brezel",
        "riesling",
    ]
    assert request.basket.items[1].quantity == 2.0
    assert request.basket.items[1].amount == pytest.approx(1.40)
    assert request.basket.currency == "EUR"
    assert request.budget.ToNanoseconds() == 75_500_000
    assert list(request.allowed_channels) == [
        common_pb2.CHANNEL_RECEIPT,
        common_pb2.CHANNEL_CASHIER_PROMPT,
    ]
    assert request.deferred_activation is True
    assert request.request_time.ToDatetime(tzinfo=UTC) == moment
    assert (request.request_id, request.device) == ("r-1", "till")


def test_unset_options_stay_unset() -> None:
    request = decide_request(customer_id="c-anna", touchpoint="app")
    assert request.customer.kind == common_pb2.IDENTIFIER_KIND_CUSTOMER_ID
    for field in ("location", "basket", "budget", "request_time"):
        assert not request.HasField(field)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"touchpoint": "moon"}, "unknown touchpoint 'moon'"),
        ({"touchpoint": "app", "allowed_channels": ["pigeon"]}, "unknown channel 'pigeon'"),
        ({"touchpoint": "app", "budget_ms": 0}, "budget_ms must be > 0"),
        ({"touchpoint": "pos", "basket": ["brezel:bakery:2"]}, r"basket\[0\]"),
        ({"touchpoint": "pos", "basket": ["a:b:1:1", "x:y:two:1"]}, r"basket\[1\].*numbers"),
    ],
)
def test_bad_decide_arguments_name_the_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decide_request("customer_id:c-1", **kwargs)  # type: ignore[arg-type]


def test_reward_request() -> None:
    request = reward_request("ev-1", 2.5, "redeem", datetime(2026, 1, 1, 12))
    assert (request.event_id, request.value, request.kind) == ("ev-1", 2.5, "redeem")
    # A naive time is taken as UTC.
    assert request.time == timestamp_pb2.Timestamp(seconds=1767268800)
    with pytest.raises(ValueError, match="event_id"):
        reward_request("", 1.0)


def test_reward_requests_carry_a_fresh_key_unless_one_is_given() -> None:
    first, second = reward_request("ev-1", 1.0), reward_request("ev-1", 1.0)
    assert first.idempotency_key and second.idempotency_key
    assert first.idempotency_key != second.idempotency_key
    assert reward_request("ev-1", 1.0, idempotency_key="order-9").idempotency_key == "order-9"


def test_decision_from_response() -> None:
    response = decision_pb2.DecideResponse(
        event_id="ev-7",
        offer=decision_pb2.Offer(
            offer_id="emmentaler-20",
            title="20% auf Emmentaler",
            description="d",
            category="cheese",
            payload={"coupon_code": "EMM20"},
        ),
        channel=common_pb2.CHANNEL_PUSH,
        send_at=timestamp_pb2.Timestamp(seconds=1767268800),
        probability=0.8,
        model_version="m-3",
        reasons=[decision_pb2.Reason(code="chosen.model", detail="top")],
        degraded=[decision_pb2.DEGRADED_PART_CONTEXT, decision_pb2.DEGRADED_PART_MODEL],
        trace_id="ab" * 16,
        candidate_count=12,
    )
    decision = Decision.from_proto(response)
    assert decision.offer_id == "emmentaler-20"
    assert decision.payload == {"coupon_code": "EMM20"}
    assert decision.channel == "push"
    assert decision.send_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert decision.reasons == (Reason("chosen.model", "top"),)
    assert decision.degraded == ("context", "model")
    assert decision.is_degraded
    assert decision.fallback is False
    data = decision.to_dict()
    assert data["send_at"] == "2026-01-01T12:00:00+00:00"
    assert data["reasons"] == [{"code": "chosen.model", "detail": "top"}]
    assert data["degraded"] == ["context", "model"]
    with pytest.raises(AttributeError):
        decision.offer_id = "x"  # type: ignore[misc]


def test_decision_without_send_time() -> None:
    decision = Decision.from_proto(decision_pb2.DecideResponse(event_id="e"))
    assert decision.send_at is None
    assert decision.channel == ""
    assert not decision.is_degraded
    assert decision.to_dict()["send_at"] is None
