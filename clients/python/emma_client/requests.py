"""Builds protobuf requests from the SDK's friendly arguments, validating them early."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Required, TypeAlias, TypedDict, Unpack

from google.protobuf import timestamp_pb2

from emma_client import names
from emma_client.protos.emma.common.v1 import common_pb2
from emma_client.protos.emma.decision.v1 import decision_pb2

#: A customer as a proto, a ("loyalty_card", "1234") pair or a "loyalty_card:1234" string.
CustomerLike: TypeAlias = common_pb2.CustomerRef | tuple[str, str] | str
#: A basket line as a proto, a mapping with BasketItem's field names, a
#: (product_id, category, quantity, amount) tuple or a "product:category:quantity:amount" string.
BasketLine: TypeAlias = (
    common_pb2.BasketItem | Mapping[str, Any] | tuple[str, str, float, float] | Sequence[Any] | str
)
#: A location as a proto or a (latitude, longitude) pair.
LocationLike: TypeAlias = common_pb2.GeoPoint | tuple[float, float]


def customer_ref(
    customer: CustomerLike | None = None, **identifiers: str | None
) -> common_pb2.CustomerRef:
    """One CustomerRef from `customer` or exactly one keyword such as loyalty_card="1234"."""
    given = {kind: value for kind, value in identifiers.items() if value is not None}
    if (customer is None) == (not given) or len(given) > 1:
        raise ValueError(
            "give exactly one customer: customer=... or one of customer_id=, loyalty_card=, "
            "app_user_id=, email_sha256=, device_id="
        )
    if customer is None:
        kind, value = next(iter(given.items()))
    elif isinstance(customer, common_pb2.CustomerRef):
        return customer
    elif isinstance(customer, str):
        kind, sep, value = customer.partition(":")
        if not sep:
            raise ValueError(f"customer {customer!r}: expected KIND:VALUE, e.g. loyalty_card:1234")
    else:
        kind, value = customer
    if not value:
        raise ValueError("customer value must not be empty")
    return common_pb2.CustomerRef(kind=names.identifier_kind(kind), value=value)


def basket_item(line: BasketLine, index: int = 0) -> common_pb2.BasketItem:
    """One basket line; ValueError names the line (basket[index]) when it is malformed."""
    if isinstance(line, common_pb2.BasketItem):
        return line
    if isinstance(line, Mapping):
        return common_pb2.BasketItem(**line)
    parts = line.split(":") if isinstance(line, str) else list(line)
    if len(parts) != 4:
        raise ValueError(f"basket[{index}]: {line!r}: expected product:category:quantity:amount")
    product_id, category, quantity, amount = parts
    try:
        return common_pb2.BasketItem(
            product_id=str(product_id),
            category=str(category),
            quantity=float(quantity),
            amount=float(amount),
        )
    except (TypeError, ValueError):
        raise ValueError(
            f"basket[{index}]: {line!r}: quantity and amount must be numbers"
        ) from None


def basket(lines: Iterable[BasketLine], currency: str = "EUR") -> common_pb2.Basket:
    return common_pb2.Basket(
        items=[basket_item(line, i) for i, line in enumerate(lines)], currency=currency
    )


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    """A Timestamp; naive datetimes are taken as UTC."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return stamp


class DecideOptions(TypedDict, total=False):
    """Keyword arguments of `decide()`; only `touchpoint` is required."""

    touchpoint: Required[str | int]
    store_id: str
    location: LocationLike | None
    basket: Iterable[BasketLine] | None
    currency: str
    budget_ms: float | None
    allowed_channels: Iterable[str | int]
    deferred_activation: bool
    request_time: datetime | None
    request_id: str
    device: str
    customer_id: str | None
    loyalty_card: str | None
    app_user_id: str | None
    email_sha256: str | None
    device_id: str | None


def decide_request(
    customer: CustomerLike | None = None, **options: Unpack[DecideOptions]
) -> decision_pb2.DecideRequest:
    """A DecideRequest; ValueError names the first argument that is not valid."""
    identifiers = {
        "customer_id": options.get("customer_id"),
        "loyalty_card": options.get("loyalty_card"),
        "app_user_id": options.get("app_user_id"),
        "email_sha256": options.get("email_sha256"),
        "device_id": options.get("device_id"),
    }
    request = decision_pb2.DecideRequest(
        customer=customer_ref(customer, **identifiers),
        touchpoint=names.touchpoint(options["touchpoint"]),
        store_id=options.get("store_id", ""),
        allowed_channels=[names.channel(c) for c in options.get("allowed_channels", ())],
        deferred_activation=options.get("deferred_activation", False),
        request_id=options.get("request_id", ""),
        device=options.get("device", ""),
    )
    location = options.get("location")
    if location is not None:
        if isinstance(location, common_pb2.GeoPoint):
            request.location.CopyFrom(location)
        else:
            request.location.latitude, request.location.longitude = location
    lines = options.get("basket")
    if lines is not None:
        request.basket.CopyFrom(basket(lines, options.get("currency", "EUR")))
    budget_ms = options.get("budget_ms")
    if budget_ms is not None:
        if budget_ms <= 0:
            raise ValueError(f"budget_ms must be > 0, got {budget_ms}")
        request.budget.FromNanoseconds(round(budget_ms * 1_000_000))
    request_time = options.get("request_time")
    if request_time is not None:
        request.request_time.CopyFrom(timestamp(request_time))
    return request


def reward_request(
    event_id: str,
    value: float,
    kind: str = "",
    time: datetime | None = None,
    idempotency_key: str | None = None,
) -> decision_pb2.RewardRequest:
    """A RewardRequest; without a key, a fresh one, so the SDK's retries count once."""
    if not event_id:
        raise ValueError("event_id must not be empty")
    request = decision_pb2.RewardRequest(
        event_id=event_id,
        value=value,
        kind=kind,
        idempotency_key=uuid.uuid4().hex if idempotency_key is None else idempotency_key,
    )
    if time is not None:
        request.time.CopyFrom(timestamp(time))
    return request


def activate_request(event_id: str, time: datetime | None = None) -> decision_pb2.ActivateRequest:
    if not event_id:
        raise ValueError("event_id must not be empty")
    request = decision_pb2.ActivateRequest(event_id=event_id)
    if time is not None:
        request.time.CopyFrom(timestamp(time))
    return request
