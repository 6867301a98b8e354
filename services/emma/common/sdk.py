"""The SDK's request helpers typed with the services' generated classes, for in-tree callers.

The SDK ships its own copy of the generated code (emma_client.protos); both copies register
the same descriptors, so their message classes are one and the same at run time and only
the type checker tells them apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from google.protobuf import timestamp_pb2

from emma.common.v1 import common_pb2
from emma_client import names as _names
from emma_client import requests as _requests


def customer_ref(
    customer: _requests.CustomerLike | common_pb2.CustomerRef | None = None,
    **identifiers: str | None,
) -> common_pb2.CustomerRef:
    given = cast(_requests.CustomerLike | None, customer)
    return cast(common_pb2.CustomerRef, _requests.customer_ref(given, **identifiers))


def basket_item(line: _requests.BasketLine, index: int = 0) -> common_pb2.BasketItem:
    return cast(common_pb2.BasketItem, _requests.basket_item(line, index))


def channel(name: str | int) -> common_pb2.Channel.ValueType:
    return common_pb2.Channel.ValueType(_names.channel(name))


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    return _requests.timestamp(moment)
