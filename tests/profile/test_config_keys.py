"""Configuration, the key layout and the domain enums' parity with the protos."""

from __future__ import annotations

import enum

import pytest
from redis.crc import key_slot

from emma.common.v1 import common_pb2
from emma.profile import model
from emma.profile.config import ProfileConfig
from emma.profile.keys import customer_keys, identifier_key
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
        ("EMMA_PROFILE_PORT", "70000"),
        ("EMMA_REDIS_URL", "localhost:6379"),
        ("EMMA_DEFAULT_TIME_ZONE", "Mars/Olympus"),
    ],
)
def test_bad_values_fail_naming_the_variable(env: str, value: str) -> None:
    with pytest.raises(ConfigError, match=env):
        load_config(ProfileConfig, [], {env: value})


def test_every_key_of_a_customer_is_in_one_slot() -> None:
    keys = customer_keys("emma", "42")
    assert keys.profile == "{emma:c:42}:profile"
    slots = {key_slot(key.encode()) for key in keys.all()}
    assert slots == {key_slot(b"emma:c:42")}
    assert len(set(keys.all())) == len(keys.all())


def test_identifier_index_keys() -> None:
    ref = CustomerRef(IdentifierKind.LOYALTY_CARD, "4711:0815")
    assert identifier_key("emma", ref) == "emma:id:loyalty_card:4711:0815"
    assert CustomerRef.decode(ref.encode()) == ref


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
