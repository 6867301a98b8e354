"""In-process gRPC tests of the context service on a free port."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from emma.common.v1 import common_pb2
from emma.context import convert
from emma.context.config import ContextConfig
from emma.context.features import Feature, context_features
from emma.context.resolver import ResolvedContext
from emma.context.server import build_resolver, build_server
from emma.context.v1 import context_pb2, context_pb2_grpc
from emma.runtime.config import load_config
from emma.runtime.main import build_served


class WeatherProvider:
    name = "weather"

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        return [Feature("weather", "snow")]


class HangingProvider:
    name = "hanging"

    async def signals(self, context: ResolvedContext) -> list[Feature]:
        await asyncio.sleep(10)
        return []


def _time(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


@pytest.fixture
async def stub() -> AsyncIterator[context_pb2_grpc.ContextServiceAsyncStub]:
    config = dataclasses.replace(load_config(ContextConfig, [], {}), port=0)
    server, port = build_server(config, providers=[WeatherProvider(), HangingProvider()])
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield context_pb2_grpc.ContextServiceStub(channel)
    finally:
        await channel.close(None)
        await server.stop(0)


def _features(context: context_pb2.Context) -> dict[str, list[object]]:
    named: dict[str, list[object]] = {}
    for feature in context.features:
        value = feature.number if feature.WhichOneof("value") == "number" else feature.text
        named.setdefault(feature.name, []).append(value)
    return named


async def test_resolve_for_a_store(stub: context_pb2_grpc.ContextServiceAsyncStub) -> None:
    request = context_pb2.ResolveRequest(
        time=_time(datetime(2026, 12, 24, 8, 30, tzinfo=UTC)),
        store_id="muenchen-marienplatz",
        touchpoint=common_pb2.TOUCHPOINT_POS,
        device="till",
        basket=common_pb2.Basket(
            items=[
                common_pb2.BasketItem(
                    product_id="stollen", category="bakery", quantity=1, amount=12.99
                )
            ],
            currency="EUR",
        ),
    )
    context = (await stub.Resolve(request, timeout=5)).context
    assert context.local_time == "2026-12-24T09:30:00+01:00"
    assert context.time_zone == "Europe/Berlin"
    assert context.daypart == context_pb2.DAYPART_MORNING
    assert (context.weekday, context.weekend) == (4, False)
    assert context.season == context_pb2.SEASON_WINTER and not context.southern_hemisphere
    assert (context.country, context.region) == ("DE", "BY")
    assert not context.HasField("holiday")
    assert context.next_holiday.date == "2026-12-25"
    assert context.days_to_next_holiday == 1
    assert list(context.retail_seasons) == ["advent", "christmas"]
    assert context.store.store_id == "muenchen-marienplatz"
    assert context.store.attributes["format"] == "supermarket"
    assert context.store_open and not context.in_store and context.store_distance_m == 0
    assert context.touchpoint == common_pb2.TOUCHPOINT_POS and context.device == "till"
    assert context.basket.item_count == 1 and context.basket.value == pytest.approx(12.99)
    assert list(context.signals) == [context_pb2.Feature(name="weather", text="snow")]
    assert list(context.skipped_providers) == ["hanging"]
    named = _features(context)
    assert named["touchpoint"] == ["pos"] and named["device"] == ["till"]
    assert named["retail_season"] == ["advent", "christmas"]
    assert named["weather"] == ["snow"]
    assert named["basket_value"] == [pytest.approx(12.99)]


async def test_resolve_for_coordinates(stub: context_pb2_grpc.ContextServiceAsyncStub) -> None:
    request = context_pb2.ResolveRequest(
        time=_time(datetime(2026, 10, 3, 10, tzinfo=UTC)),
        location=common_pb2.GeoPoint(latitude=53.5521, longitude=9.9353),  # at Hamburg-Altona
        touchpoint=common_pb2.TOUCHPOINT_APP,
    )
    context = (await stub.Resolve(request, timeout=5)).context
    assert context.store.store_id == "hamburg-altona"
    assert context.in_store and 0 < context.store_distance_m < 150
    assert (context.country, context.region) == ("DE", "HH")
    assert context.holiday.name == "Tag der Deutschen Einheit"
    assert context.holiday.date == "2026-10-03"
    assert not context.store_open  # closed on the public holiday
    named = _features(context)
    assert named["is_holiday"] == [1.0] and named["in_store"] == [1.0]
    assert named["distance_km"][0] == pytest.approx(context.store_distance_m / 1000)


async def test_resolve_without_time_uses_the_server_clock(
    stub: context_pb2_grpc.ContextServiceAsyncStub,
) -> None:
    before = datetime.now(UTC)
    context = (await stub.Resolve(context_pb2.ResolveRequest(), timeout=5)).context
    local = datetime.fromisoformat(context.local_time)
    assert before.replace(microsecond=0) <= local <= datetime.now(UTC)
    assert context.time_zone == "Europe/Berlin" and context.country == "DE"


async def test_nearest_stores(stub: context_pb2_grpc.ContextServiceAsyncStub) -> None:
    potsdam = common_pb2.GeoPoint(latitude=52.3906, longitude=13.0645)
    response = await stub.FindNearestStores(
        context_pb2.FindNearestStoresRequest(location=potsdam, limit=2), timeout=5
    )
    assert [s.store.store_id for s in response.stores] == ["berlin-mitte", "leipzig-zentrum"]
    assert 20_000 < response.stores[0].distance_m < 30_000
    one = await stub.FindNearestStores(context_pb2.FindNearestStoresRequest(location=potsdam))
    assert [s.store.store_id for s in one.stores] == ["berlin-mitte"]
    none = await stub.FindNearestStores(
        context_pb2.FindNearestStoresRequest(location=potsdam, limit=5, max_distance_m=10_000)
    )
    assert list(none.stores) == []


async def test_get_store(stub: context_pb2_grpc.ContextServiceAsyncStub) -> None:
    store = (await stub.GetStore(context_pb2.GetStoreRequest(store_id="koeln-dom"))).store
    assert (store.name, store.region, store.geofence_m) == ("Emma Köln Dom", "NW", 150)
    assert store.location.latitude == pytest.approx(50.9413)
    monday = store.opening_hours[0]
    assert (monday.weekday, monday.open_minute, monday.close_minute) == (1, 420, 1260)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetStore(context_pb2.GetStoreRequest(store_id="paris-louvre"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "store_id" in (raised.value.details() or "")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            context_pb2.ResolveRequest(location=common_pb2.GeoPoint(latitude=91)),
            "location.latitude",
        ),
        (
            context_pb2.ResolveRequest(location=common_pb2.GeoPoint(latitude=float("nan"))),
            "location.latitude",
        ),
        (
            context_pb2.ResolveRequest(location=common_pb2.GeoPoint(longitude=-181)),
            "location.longitude",
        ),
        (context_pb2.ResolveRequest(store_id="paris-louvre"), "store_id"),
        (context_pb2.ResolveRequest(time_zone="Europe/Atlantis"), "time_zone"),
        (context_pb2.ResolveRequest(country="XX"), "country"),
        (context_pb2.ResolveRequest(country="DE", region="ZZ"), "region"),
        (context_pb2.ResolveRequest(time=Timestamp(seconds=-5_000_000_000)), "time"),
        (context_pb2.ResolveRequest(time=Timestamp(seconds=1, nanos=-1)), "time"),
    ],
)
async def test_resolve_bad_input_is_invalid_argument_naming_the_field(
    stub: context_pb2_grpc.ContextServiceAsyncStub, request_: context_pb2.ResolveRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Resolve(request_, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (context_pb2.FindNearestStoresRequest(), "location"),
        (
            context_pb2.FindNearestStoresRequest(location=common_pb2.GeoPoint(latitude=-90.5)),
            "location.latitude",
        ),
        (context_pb2.FindNearestStoresRequest(location=common_pb2.GeoPoint(), limit=-1), "limit"),
        (
            context_pb2.FindNearestStoresRequest(location=common_pb2.GeoPoint(), max_distance_m=-1),
            "max_distance_m",
        ),
    ],
)
async def test_nearest_bad_input_is_invalid_argument(
    stub: context_pb2_grpc.ContextServiceAsyncStub,
    request_: context_pb2.FindNearestStoresRequest,
    field: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.FindNearestStores(request_, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith(f"{field}: ")


async def test_get_store_without_id_is_invalid_argument(
    stub: context_pb2_grpc.ContextServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetStore(context_pb2.GetStoreRequest())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith("store_id: ")


async def test_slow_providers_are_skipped_within_the_callers_deadline() -> None:
    # The provider timeout alone would wait 5 s; the caller allows 0.5 s.
    config = dataclasses.replace(load_config(ContextConfig, [], {}), port=0, provider_timeout_s=5)
    server, port = build_server(config, providers=[HangingProvider(), WeatherProvider()])
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = context_pb2_grpc.ContextServiceStub(channel)
            started = asyncio.get_running_loop().time()
            response = await stub.Resolve(
                context_pb2.ResolveRequest(store_id="koeln-dom"), timeout=0.5
            )
            # Providers get half the time left: the answer comes well before the deadline.
            assert asyncio.get_running_loop().time() - started < 0.4
    finally:
        await server.stop(0)
    assert list(response.context.skipped_providers) == ["hanging"]
    assert [f.name for f in response.context.signals] == ["weather"]


async def test_the_default_configuration_has_the_weather_file() -> None:
    server, port = build_server(dataclasses.replace(load_config(ContextConfig, [], {}), port=0))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = context_pb2_grpc.ContextServiceStub(channel)
            request = context_pb2.ResolveRequest(
                time=_time(datetime(2026, 7, 1, 10, tzinfo=UTC)), store_id="muenchen-marienplatz"
            )
            context = (await stub.Resolve(request, timeout=5)).context
            store = (
                await stub.GetStore(context_pb2.GetStoreRequest(store_id="muenchen-marienplatz"))
            ).store
    finally:
        await server.stop(0)
    assert list(context.signals) == [context_pb2.Feature(name="typical_temp_c", number=18.0)]
    assert _features(context)["typical_temp_c"] == [18.0]
    assert list(store.holiday_categories) == ["catholic", "public"]
    assert not store.open_on_public_holidays


async def test_every_feature_arrives_in_order(
    stub: context_pb2_grpc.ContextServiceAsyncStub,
) -> None:
    request = context_pb2.ResolveRequest(
        time=_time(datetime(2026, 12, 24, 8, 30, tzinfo=UTC)),
        location=common_pb2.GeoPoint(latitude=48.1375, longitude=11.5755),
        touchpoint=common_pb2.TOUCHPOINT_APP,
        basket=common_pb2.Basket(
            items=[common_pb2.BasketItem(product_id="x", category="wine", quantity=1, amount=7.5)]
        ),
    )
    context = (await stub.Resolve(request, timeout=5)).context
    resolver = build_resolver(load_config(ContextConfig, [], {}))
    resolved = resolver.resolve(convert.context_request(request))
    expected = context_features(resolved, [Feature("weather", "snow")])
    got = [
        (f.name, f.number if f.WhichOneof("value") == "number" else f.text)
        for f in context.features
    ]
    assert got == [(f.name, f.value) for f in expected]
    assert ("distance_km", pytest.approx(resolved.store_distance_m / 1000)) in got  # type: ignore[operator]


async def test_timestamps_before_1970_and_with_nanoseconds(
    stub: context_pb2_grpc.ContextServiceAsyncStub,
) -> None:
    # 1950-01-01T00:00:00.999999999Z: microseconds are truncated, not rounded up.
    request = context_pb2.ResolveRequest(
        time=Timestamp(seconds=-631_152_000, nanos=999_999_999), store_id="berlin-mitte"
    )
    context = (await stub.Resolve(request, timeout=5)).context
    assert context.local_time == "1950-01-01T01:00:00+01:00"
    assert context.weekday == 7  # a Sunday


async def test_the_service_process_freezes_its_loaded_heap() -> None:
    # Full collections would otherwise walk the registry and calendars (docs/context.md).
    gc.unfreeze()
    server, port = build_served(
        build_server, dataclasses.replace(load_config(ContextConfig, [], {}), port=0)
    )
    try:
        assert gc.get_freeze_count() > 10_000
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = context_pb2_grpc.ContextServiceStub(channel)
            request = context_pb2.ResolveRequest(store_id="berlin-mitte")
            assert (await stub.Resolve(request, timeout=5)).context.store.store_id
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
        await server.stop(0)
