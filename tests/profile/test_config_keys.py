"""Configuration, the key layout and the domain enums' parity with the protos."""

from __future__ import annotations

import enum

import pytest
from redis.crc import key_slot

from emma.common.v1 import common_pb2
from emma.profile import model
from emma.profile.config import ProfileConfig
from emma.profile.keys import customer_keys, home_id, replay_window
from emma.profile.model import CustomerRef, IdentifierKind
from emma.profile.v1 import profile_pb2
from emma.runtime.config import ConfigError, load_config


def test_defaults() -> None:
    config = load_config(ProfileConfig, [], {})
    assert config.port == 50052
    assert config.key_prefix == "emma"
    assert config.affinity_half_life_days == 30
    assert config.profile_ttl_days == 365
    assert config.max_batch_events == 1000
    assert config.ttl_s == 365 * 86_400
    assert config.replay_window_s == 7 * 86_400


def test_environment_overrides() -> None:
    config = load_config(
        ProfileConfig,
        [],
        {
            "EMMA_PROFILE_KEY_PREFIX": "t1",
            "EMMA_AFFINITY_HALF_LIFE_DAYS": "7",
            "EMMA_MAX_BATCH_EVENTS": "5",
        },
    )
    assert (config.key_prefix, config.half_life_s, config.max_batch_events) == ("t1", 7 * 86_400, 5)


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("EMMA_PROFILE_KEY_PREFIX", "a{b"),
        ("EMMA_PROFILE_KEY_PREFIX", "a:b"),
        ("EMMA_AFFINITY_HALF_LIFE_DAYS", "0"),
        ("EMMA_PROFILE_TTL_DAYS", "-1"),
        ("EMMA_MAX_BATCH_EVENTS", "0"),
        ("EMMA_REPLAY_WINDOW_DAYS", "0"),
        ("EMMA_PROFILE_PORT", "70000"),
        ("EMMA_REDIS_URL", "localhost:6379"),
        ("EMMA_DEFAULT_TIME_ZONE", "Mars/Olympus"),
    ],
)
def test_bad_values_fail_naming_the_variable(env: str, value: str) -> None:
    with pytest.raises(ConfigError, match=env):
        load_config(ProfileConfig, [], {env: value})


def test_a_cluster_url_is_accepted() -> None:
    config = load_config(ProfileConfig, [], {"EMMA_REDIS_URL": "redis+cluster://10.0.0.1:7000"})
    assert config.redis_url == "redis+cluster://10.0.0.1:7000"


def test_every_key_of_a_customer_is_in_one_slot() -> None:
    keys = customer_keys("emma", "42", window=2900)
    assert keys.main == "{emma:c:42}"
    assert keys.script_keys() == [
        "{emma:c:42}",
        "{emma:c:42}:k",
        "{emma:c:42}:kl",
        "{emma:c:42}:f",
        "{emma:c:42}:v",
        "{emma:c:42}:e2900",
        "{emma:c:42}:e2899",
    ]
    assert {key_slot(key.encode()) for key in keys.script_keys()} == {key_slot(b"emma:c:42")}


def test_an_identifier_s_home_is_its_customer_id_or_a_hash_of_it() -> None:
    assert home_id(CustomerRef(IdentifierKind.CUSTOMER_ID, "42")) == "42"
    card = CustomerRef(IdentifierKind.LOYALTY_CARD, "4711:0815")
    derived = home_id(card)
    assert derived == home_id(card) and derived.startswith("~") and len(derived) == 25
    assert "4711" not in derived
    assert derived != home_id(CustomerRef(IdentifierKind.APP_USER_ID, "4711:0815"))
    assert CustomerRef.decode(card.encode()) == card


def test_replay_windows_are_consecutive() -> None:
    week = 7 * 86_400.0
    assert replay_window(week * 10 + 1, week) == 10
    assert replay_window(week * 11 - 1, week) == 10
    assert replay_window(week * 11, week) == 11


@pytest.mark.parametrize(
    ("domain", "proto", "prefix"),
    [
        (model.IdentifierKind, common_pb2.IdentifierKind, "IDENTIFIER_KIND_"),
        (model.Channel, common_pb2.Channel, "CHANNEL_"),
        (model.Purpose, profile_pb2.Purpose, "PURPOSE_"),
        (model.ConsentStatus, profile_pb2.ConsentStatus, "CONSENT_STATUS_"),
        (model.InteractionKind, profile_pb2.InteractionKind, "INTERACTION_KIND_"),
        (model.OfferResponseKind, profile_pb2.OfferResponseKind, "OFFER_RESPONSE_KIND_"),
        (model.LifeEventKind, profile_pb2.LifeEventKind, "LIFE_EVENT_KIND_"),
    ],
)
def test_domain_enums_match_the_protos(
    domain: type[enum.IntEnum], proto: object, prefix: str
) -> None:
    proto_members = {name.removeprefix(prefix): value for name, value in proto.items()}  # type: ignore[attr-defined]
    assert {m.name: m.value for m in domain} == proto_members
