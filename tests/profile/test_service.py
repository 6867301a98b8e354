"""The gRPC service in-process on port 0, on the private Redis: responses and status codes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emma.common.v1 import common_pb2
from emma.profile.config import ProfileConfig
from emma.profile.server import SERVICE_NAME, build_server
from emma.profile.v1 import profile_pb2 as pb
from emma.profile.v1 import profile_pb2_grpc
from emma.runtime.redis_server import free_port
from tests.profile.conftest import CountingSends

if TYPE_CHECKING:
    from emma.profile.v1.profile_pb2_grpc import ProfileServiceAsyncStub as Stub

CUSTOMER = common_pb2.IDENTIFIER_KIND_CUSTOMER_ID
EVENT_TYPES = "purchase, interaction, offer_response, support_contact, life_event, location"
CARD = common_pb2.IDENTIFIER_KIND_LOYALTY_CARD


def ref(value: str, kind: int = CUSTOMER) -> common_pb2.CustomerRef:
    return common_pb2.CustomerRef(kind=kind, value=value)  # type: ignore[arg-type]


def stamp(time: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(time)
    return result


def buy(
    event_id: str, customer: str, *lines: tuple[str, str], ago: timedelta = timedelta(0)
) -> pb.Event:
    return pb.Event(
        event_id=event_id,
        customer=ref(customer),
        time=stamp(datetime.now(UTC) - ago),
        purchase=pb.Purchase(
            items=[
                common_pb2.BasketItem(product_id=p, category=c, quantity=1, amount=2.5)
                for p, c in lines
            ],
            currency="EUR",
        ),
    )


@pytest.fixture
async def served(config: ProfileConfig) -> AsyncIterator[tuple[Stub, grpc.aio.Channel]]:
    server, port = build_server(dataclasses.replace(config, max_batch_events=5))
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield profile_pb2_grpc.ProfileServiceStub(channel), channel
    finally:
        await channel.close(None)
        await server.stop(0)


@pytest.fixture
def stub(served: tuple[Stub, grpc.aio.Channel]) -> Stub:
    return served[0]


@pytest.fixture
async def any_stub(any_config: ProfileConfig) -> AsyncIterator[Stub]:
    """A server on each backend in turn: a single Redis, then a cluster."""
    server, port = build_server(any_config)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield profile_pb2_grpc.ProfileServiceStub(channel)
    finally:
        await channel.close(None)
        await server.stop(0)


async def status_of(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def keys_in(redis_url: str) -> list[str]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        # The outbox stream is a queue of batches the trigger engine deletes once processed
        # (docs/moments.md), not a key of any customer.
        return [key async for key in client.scan_iter("*") if key != "emma:profile-events"]
    finally:
        await client.aclose()


async def test_health_reports_the_service_serving(served: tuple[Stub, grpc.aio.Channel]) -> None:
    health = health_pb2_grpc.HealthStub(served[1])
    reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        (None, "customer.kind: must be set"),
        (ref(""), "customer.value: must not be empty"),
        (common_pb2.CustomerRef(kind=99, value="x"), "customer.kind: unknown value 99"),  # type: ignore[arg-type]
    ],
)
async def test_a_bad_customer_ref_is_an_invalid_argument(
    stub: Stub, customer: common_pb2.CustomerRef | None, expected: str
) -> None:
    for call in (
        stub.GetProfile(pb.GetProfileRequest(customer=customer)),
        stub.EraseCustomer(pb.EraseCustomerRequest(customer=customer)),
        stub.ExportCustomer(pb.ExportCustomerRequest(customer=customer)),
    ):
        error = await status_of(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == expected


async def test_an_unknown_customer_is_not_found_but_not_an_error(stub: Stub) -> None:
    reply = await stub.GetProfile(pb.GetProfileRequest(customer=ref("nobody")))
    assert reply.found is False
    assert reply.profile == pb.Profile()


async def test_record_then_read_and_replay(stub: Stub) -> None:
    batch = pb.RecordEventsRequest(
        events=[
            buy("e1", "42", ("gouda", "cheese"), ago=timedelta(days=30)),
            buy("e2", "42", ("riesling", "wine"), ("sekt", "wine")),
        ]
    )
    reply = await stub.RecordEvents(batch)
    assert (reply.accepted, reply.duplicates) == (2, 0)
    replay = await stub.RecordEvents(batch)
    assert (replay.accepted, replay.duplicates) == (0, 2)
    got = await stub.GetProfile(pb.GetProfileRequest(customer=ref("42")))
    assert got.found
    profile = got.profile
    assert profile.rfm.purchase_count == 2
    assert profile.rfm.total_spend == pytest.approx(7.5)
    assert [a.key for a in profile.category_affinities] == ["wine", "cheese"]
    assert profile.category_affinities[1].score == pytest.approx(0.5, rel=1e-3)
    assert len(profile.active_hours) == 24
    assert [(i.kind, i.value) for i in profile.identifiers] == [(CUSTOMER, "42")]


async def test_a_batch_with_one_bad_event_writes_nothing(stub: Stub, redis_url: str) -> None:
    bad = pb.Event(event_id="e3", customer=ref("42"), time=stamp(datetime.now(UTC)))
    request = pb.RecordEventsRequest(
        events=[buy("e1", "42", ("gouda", "cheese")), buy("e2", "43", ("brezel", "bakery")), bad]
    )
    error = await status_of(stub.RecordEvents(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "events[2].payload: must be one of " + EVENT_TYPES
    assert await keys_in(redis_url) == []


def _nan_amount(e: pb.Event) -> None:
    e.purchase.amount = float("nan")


def _negative_quantity(e: pb.Event) -> None:
    e.purchase.items[0].quantity = -2


def _two_days_ahead(e: pb.Event) -> None:
    e.time.CopyFrom(stamp(datetime.now(UTC) + timedelta(days=2)))


def _no_customer(e: pb.Event) -> None:
    e.customer.Clear()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_nan_amount, "events[0].purchase.amount: must be a finite number"),
        (_negative_quantity, "events[0].purchase.items[0].quantity: must be >= 0"),
        (_two_days_ahead, "events[0].time: must not be more than 1 day in the future"),
        (_no_customer, "events[0].customer.kind: must be set"),
    ],
)
async def test_invalid_events_name_the_field(
    stub: Stub, mutate: Callable[[pb.Event], None], expected: str
) -> None:
    ev = buy("e1", "42", ("gouda", "cheese"))
    mutate(ev)
    error = await status_of(stub.RecordEvents(pb.RecordEventsRequest(events=[ev])))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == expected


async def test_sentiment_outside_the_unit_interval(stub: Stub) -> None:
    ev = pb.Event(event_id="s", customer=ref("42"), support_contact=pb.SupportContact(sentiment=2))
    error = await status_of(stub.RecordEvents(pb.RecordEventsRequest(events=[ev])))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "events[0].support_contact.sentiment: must be in [-1, 1]"


async def test_a_batch_over_the_limit_is_refused(stub: Stub) -> None:
    events = [buy(f"e{i}", "42", ("gouda", "cheese")) for i in range(6)]
    error = await status_of(stub.RecordEvents(pb.RecordEventsRequest(events=events)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "events: at most 5 per batch"


async def test_record_event_stream(stub: Stub) -> None:
    async def batches() -> AsyncIterator[pb.RecordEventStreamRequest]:
        yield pb.RecordEventStreamRequest(events=[buy("e1", "42", ("gouda", "cheese"))])
        yield pb.RecordEventStreamRequest(
            events=[buy("e1", "42", ("gouda", "cheese")), buy("e2", "43", ("sekt", "wine"))]
        )

    reply = await stub.RecordEventStream(batches())
    assert (reply.accepted, reply.duplicates, reply.batches) == (2, 1, 2)


async def test_record_event_stream_names_the_bad_batch(stub: Stub) -> None:
    async def batches() -> AsyncIterator[pb.RecordEventStreamRequest]:
        yield pb.RecordEventStreamRequest(events=[buy("e1", "42", ("gouda", "cheese"))])
        yield pb.RecordEventStreamRequest(events=[pb.Event(event_id="x", customer=ref("42"))])

    error = await status_of(stub.RecordEventStream(batches()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "batches[1].events[0].payload: must be one of " + EVENT_TYPES


async def test_update_preferences_with_a_mask(stub: Stub) -> None:
    prefs = pb.Preferences(
        liked_products=["emmentaler"],
        disliked_products=["gouda"],
        preferred_channels=[common_pb2.CHANNEL_PUSH],
        quiet_hours=pb.QuietHours(start_minute=1320, end_minute=420, enabled=True),
        language="de-DE",
    )
    reply = await stub.UpdatePreferences(
        pb.UpdatePreferencesRequest(customer=ref("42"), preferences=prefs)
    )
    assert reply.preferences == prefs
    reply = await stub.UpdatePreferences(
        pb.UpdatePreferencesRequest(
            customer=ref("42"),
            preferences=pb.Preferences(language="en-GB", liked_products=["ignored"]),
            update_mask=FieldMask(paths=["language"]),
        )
    )
    assert reply.preferences.language == "en-GB"
    assert list(reply.preferences.liked_products) == ["emmentaler"]
    error = await status_of(
        stub.UpdatePreferences(
            pb.UpdatePreferencesRequest(customer=ref("42"), update_mask=FieldMask(paths=["nope"]))
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("update_mask.paths[0]: unknown field 'nope'")


async def test_consent_is_effective_in_the_profile(stub: Stub) -> None:
    now = datetime.now(UTC)

    def change(status: int, at: datetime) -> pb.ConsentChange:
        return pb.ConsentChange(
            purpose=pb.PURPOSE_MARKETING,
            channel=common_pb2.CHANNEL_EMAIL,
            status=status,  # type: ignore[arg-type]
            time=stamp(at),
            source="app-settings",
        )

    await stub.UpdateConsent(
        pb.UpdateConsentRequest(
            customer=ref("42"),
            changes=[change(pb.CONSENT_STATUS_GRANTED, now - timedelta(hours=1))],
        )
    )
    reply = await stub.UpdateConsent(
        pb.UpdateConsentRequest(
            customer=ref("42"), changes=[change(pb.CONSENT_STATUS_WITHDRAWN, now)]
        )
    )
    [state] = reply.consents
    assert state.status == pb.CONSENT_STATUS_WITHDRAWN
    got = await stub.GetProfile(pb.GetProfileRequest(customer=ref("42")))
    assert list(got.profile.consents) == [state]
    error = await status_of(stub.UpdateConsent(pb.UpdateConsentRequest(customer=ref("42"))))
    assert error.details() == "changes: must not be empty"


async def test_link_identity_status_codes(stub: Stub) -> None:
    error = await status_of(
        stub.LinkIdentity(
            pb.LinkIdentityRequest(customer=ref("card-9", CARD), identifier=ref("x", CARD))
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await status_of(stub.LinkIdentity(pb.LinkIdentityRequest(customer=ref("42"))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "identifier.kind: must be set"


async def test_record_get_link_merge_export_erase(any_stub: Stub) -> None:
    """The main path over gRPC, on a single Redis and on a cluster."""
    stub = any_stub
    await stub.RecordEvents(
        pb.RecordEventsRequest(
            events=[
                buy("e1", "42", ("gouda", "cheese")),
                buy("e2", "43", ("sekt", "wine")),
                pb.Event(
                    event_id="e3",
                    customer=ref("43"),
                    time=stamp(datetime.now(UTC)),
                    offer_response=pb.OfferResponse(
                        kind=pb.OFFER_RESPONSE_KIND_DISMISSED, offer_id="coffee"
                    ),
                ),
            ]
        )
    )
    linked = await stub.LinkIdentity(
        pb.LinkIdentityRequest(customer=ref("42"), identifier=ref("card-1", CARD))
    )
    assert (linked.customer_id, linked.merged) == ("42", False)
    merged = await stub.LinkIdentity(
        pb.LinkIdentityRequest(customer=ref("43"), identifier=ref("card-1", CARD))
    )
    # Created in the same second: the smaller id survives.
    assert (merged.customer_id, merged.merged, merged.merged_customer_id) == ("42", True, "43")
    got = await stub.GetProfile(pb.GetProfileRequest(customer=ref("43")))
    assert got.found and got.profile.customer_id == "42"
    assert got.profile.rfm.purchase_count == 2
    [coffee] = got.profile.offer_history
    assert coffee.offer_id == "coffee" and coffee.HasField("last_dismissed")
    assert not coffee.HasField("last_shown")
    assert coffee.dismissals == pytest.approx(1.0, abs=0.01)
    export = await stub.ExportCustomer(pb.ExportCustomerRequest(customer=ref("card-1", CARD)))
    assert export.found and export.profile.customer_id == "42"
    raw = json.loads(export.raw_json)
    assert raw["{emma:c:42}"]["N"] == "2"
    assert raw["{emma:c:43}"] == {"X": "42"}
    erased = await stub.EraseCustomer(pb.EraseCustomerRequest(customer=ref("42")))
    assert (erased.erased, erased.identifiers_removed) == (True, 3)
    for customer in (ref("42"), ref("43"), ref("card-1", CARD)):
        gone = await stub.GetProfile(pb.GetProfileRequest(customer=customer))
        assert gone.found is False
    again = await stub.EraseCustomer(pb.EraseCustomerRequest(customer=ref("42")))
    assert again.erased is False


async def test_export_and_erase(stub: Stub, redis_url: str) -> None:
    await stub.RecordEvents(pb.RecordEventsRequest(events=[buy("e1", "42", ("gouda", "cheese"))]))
    export = await stub.ExportCustomer(pb.ExportCustomerRequest(customer=ref("42")))
    assert export.found and export.profile.customer_id == "42"
    raw = json.loads(export.raw_json)
    assert raw["{emma:c:42}"]["pgouda"] == "1000"
    erased = await stub.EraseCustomer(pb.EraseCustomerRequest(customer=ref("42")))
    assert (erased.erased, erased.identifiers_removed) == (True, 1)
    assert await keys_in(redis_url) == []
    again = await stub.EraseCustomer(pb.EraseCustomerRequest(customer=ref("42")))
    assert again.erased is False
    gone = await stub.ExportCustomer(pb.ExportCustomerRequest(customer=ref("42")))
    assert gone.found is False


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
async def test_a_redis_outage_is_unavailable_not_unknown(
    config: ProfileConfig, scheme: str
) -> None:
    dead_redis = f"{scheme}://127.0.0.1:{free_port()}"
    server, port = build_server(dataclasses.replace(config, redis_url=dead_redis))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = profile_pb2_grpc.ProfileServiceStub(channel)
            ref = common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-1")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetProfile(pb.GetProfileRequest(customer=ref), timeout=10)
    finally:
        await server.stop(0)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "storage unavailable" in (raised.value.details() or "")


async def test_get_profile_reads_profile_and_wallet_in_one_round_trip(
    any_stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = pb.Event(
        event_id="w1",
        customer=ref("42"),
        offer_response=pb.OfferResponse(
            kind=pb.OFFER_RESPONSE_KIND_SHOWN,
            offer_id="coffee",
            decision_event_id="decision-1",
            channel=common_pb2.CHANNEL_PUSH,
        ),
    )
    await any_stub.RecordEvents(
        pb.RecordEventsRequest(events=[buy("e1", "42", ("gouda", "cheese")), shown])
    )
    sends = CountingSends(monkeypatch)
    reply = await any_stub.GetProfile(pb.GetProfileRequest(customer=ref("42")))
    assert sends.count == 1  # the script reads the wallet too (it shares the hash tag)
    assert [offer.offer_id for offer in reply.profile.wallet] == ["coffee"]
    assert reply.profile.rfm.purchase_count == 1
