"""Friendly enum names map to proto values case-insensitively; unknown names are named back."""

from __future__ import annotations

import pytest

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2
from emma_client import names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pos", common_pb2.TOUCHPOINT_POS),
        ("POS", common_pb2.TOUCHPOINT_POS),
        ("TOUCHPOINT_POS", common_pb2.TOUCHPOINT_POS),
        ("touchpoint_app", common_pb2.TOUCHPOINT_APP),
        ("call-center", common_pb2.TOUCHPOINT_CALL_CENTER),
        (" web ", common_pb2.TOUCHPOINT_WEB),
        (common_pb2.TOUCHPOINT_KIOSK, common_pb2.TOUCHPOINT_KIOSK),
    ],
)
def test_touchpoint_names(name: str | int, expected: int) -> None:
    assert names.touchpoint(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("push", common_pb2.CHANNEL_PUSH),
        ("Channel_Push", common_pb2.CHANNEL_PUSH),
        ("in_app", common_pb2.CHANNEL_IN_APP),
        ("cashier-prompt", common_pb2.CHANNEL_CASHIER_PROMPT),
        ("RECEIPT", common_pb2.CHANNEL_RECEIPT),
    ],
)
def test_channel_names(name: str, expected: int) -> None:
    assert names.channel(name) == expected


def test_identifier_kind_names() -> None:
    assert names.identifier_kind("loyalty_card") == common_pb2.IDENTIFIER_KIND_LOYALTY_CARD
    assert names.identifier_kind("IDENTIFIER_KIND_EMAIL_SHA256") == (
        common_pb2.IDENTIFIER_KIND_EMAIL_SHA256
    )
    assert names.identifier_kind("App-User-Id") == common_pb2.IDENTIFIER_KIND_APP_USER_ID


@pytest.mark.parametrize(
    ("parse", "name", "what"),
    [
        (names.touchpoint, "moon", "touchpoint 'moon'"),
        (names.channel, "pigeon", "channel 'pigeon'"),
        (names.identifier_kind, "passport", "identifier kind 'passport'"),
        (names.touchpoint, "unspecified", "touchpoint 'unspecified'"),
        (names.channel, "CHANNEL_UNSPECIFIED", "channel 'CHANNEL_UNSPECIFIED'"),
    ],
)
def test_unknown_names_raise_value_error_naming_them(parse: object, name: str, what: str) -> None:
    with pytest.raises(ValueError, match=f"unknown {what}") as caught:
        parse(name)  # type: ignore[operator]
    # The message lists what would have been accepted.
    assert "expected one of" in str(caught.value)


def test_unknown_numbers_raise() -> None:
    with pytest.raises(ValueError, match="unknown channel number 99"):
        names.channel(99)
    with pytest.raises(ValueError, match="unknown touchpoint number 0"):
        names.touchpoint(0)


def test_names_back_from_values() -> None:
    assert names.channel_name(common_pb2.CHANNEL_STORE_SCREEN) == "store_screen"
    assert names.channel_name(common_pb2.CHANNEL_UNSPECIFIED) == ""
    assert names.degraded_name(decision_pb2.DEGRADED_PART_PROFILE) == "profile"
    # A value from a newer server does not break an older client.
    assert names.channel_name(42) == "42"


def test_every_proto_value_round_trips() -> None:
    for name in names.CHANNEL_NAMES:
        assert names.channel_name(names.channel(name)) == name
    assert "pos" in names.TOUCHPOINT_NAMES
    assert "unspecified" not in names.TOUCHPOINT_NAMES
