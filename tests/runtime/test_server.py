"""The shared server: health per service name, reflection, and graceful shutdown over real gRPC."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from emma.runtime.config import ConfigError
from emma.runtime.connection_age import ConnectionAge
from emma.runtime.server import EmmaServer, create_server
from emma_client.base import worker_named, workers_announced

SERVICE = "emma.test.v1.SlowService"


def _add_slow_method(server: EmmaServer, delay: float) -> None:
    async def slow(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await asyncio.sleep(delay)
        return b"done:" + request

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Slow": grpc.unary_unary_rpc_method_handler(slow)}
    )
    server.grpc_server.add_generic_rpc_handlers((handler,))


REFUSING = "emma.test.v1.RefusingService"


def _add_refusing_method(server: EmmaServer) -> None:
    async def refuse(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request: refused")

    handler = grpc.method_handlers_generic_handler(
        REFUSING, {"Refuse": grpc.unary_unary_rpc_method_handler(refuse)}
    )
    server.grpc_server.add_generic_rpc_handlers((handler,))


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return int(response.status)


async def test_health_reports_serving_per_service_name_then_not_serving_on_stop() -> None:
    server, port = create_server("127.0.0.1", 0, [SERVICE])
    assert port > 0
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        assert await _health(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING
        assert await _health(channel, "") == health_pb2.HealthCheckResponse.SERVING
        await server.health.enter_graceful_shutdown()
        assert await _health(channel, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    await server.stop(0)


async def test_reflection_lists_the_service_and_health() -> None:
    server, port = create_server("127.0.0.1", 0, [SERVICE])
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names: set[str] = set()
        async for response in stub.ServerReflectionInfo(iter([request])):
            names |= {s.name for s in response.list_services_response.service}
    await server.stop(0)
    assert {SERVICE, "grpc.health.v1.Health"} <= names


async def test_stop_lets_calls_in_flight_finish_within_the_grace_period() -> None:
    server, port = create_server("127.0.0.1", 0, [SERVICE])
    _add_slow_method(server, delay=0.3)
    cleaned: list[str] = []

    async def cleanup() -> None:
        cleaned.append("closed")

    server.on_stop(cleanup)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        slow = channel.unary_unary(f"/{SERVICE}/Slow", None, None)
        call = slow(b"x", timeout=5)
        await asyncio.sleep(0.1)  # the call is now in flight
        stopping = asyncio.create_task(server.stop(grace=2.0))
        assert await call == b"done:x"
        await stopping
    assert cleaned == ["closed"]


async def test_binding_a_taken_port_fails_clearly() -> None:
    first, port = create_server("127.0.0.1", 0, [SERVICE])
    await first.start()
    try:
        try:
            create_server("127.0.0.1", port, [SERVICE])
        except (OSError, RuntimeError) as error:
            assert str(port) in str(error)
        else:
            raise AssertionError("a second server bound the same port")
    finally:
        await first.stop(0)


async def test_callers_reconnect_after_the_connection_age_and_no_call_fails() -> None:
    server, port = create_server(
        "127.0.0.1", 0, [SERVICE], connection_age=ConnectionAge(max_age_s=0.3)
    )
    peers: list[str] = []

    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        peers.append(context.peer())  # the caller's address and port: one per connection
        await asyncio.sleep(0.05)
        return request

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.grpc_server.add_generic_rpc_handlers((handler,))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/{SERVICE}/Echo", None, None)
        # Calls for 1.5 s, each still in flight when the next starts: some are in flight
        # whenever the server asks for a new connection.

        async def started_after(delay: float, request: bytes) -> bytes:
            await asyncio.sleep(delay)
            answer: bytes = await call(request, timeout=5)
            return answer

        answers = await asyncio.gather(
            *(started_after(i * 0.03, str(i).encode()) for i in range(50))
        )
    await server.stop(0)
    assert answers == [str(i).encode() for i in range(50)]
    assert len(set(peers)) >= 3, peers


def test_a_connection_age_of_zero_is_never_and_a_negative_one_is_refused() -> None:
    assert ConnectionAge(max_age_s=0).options() == []
    assert ConnectionAge(max_age_s=2.5).options() == [("grpc.max_connection_age_ms", 2500)]
    with pytest.raises(ConfigError, match="EMMA_MAX_CONNECTION_AGE_S"):
        ConnectionAge(max_age_s=-1)


async def test_every_answer_names_its_server_and_no_two_servers_share_a_name() -> None:
    names = []
    for _ in range(2):
        server, port = create_server("127.0.0.1", 0, [SERVICE])
        _add_slow_method(server, 0.0)
        _add_refusing_method(server)
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            seen = set()
            for _ in range(2):
                call = channel.unary_unary(f"/{SERVICE}/Slow")(b"x", timeout=2)
                assert await call == b"done:x"
                seen.add(worker_named(await call.trailing_metadata()))
            # A call the handler refuses names its worker too.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await channel.unary_unary(f"/{REFUSING}/Refuse")(b"x", timeout=2)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            seen.add(worker_named(refused.value.trailing_metadata()))
        await server.stop(0)
        assert len(seen) == 1 and None not in seen
        names.append(seen.pop())
    assert names[0] != names[1]


@pytest.mark.parametrize("workers", [1, 3])
async def test_every_answer_says_how_many_workers_share_the_port(workers: int) -> None:
    server, port = create_server("127.0.0.1", 0, [SERVICE], workers=workers)
    _add_refusing_method(server)
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        await check
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(f"/{REFUSING}/Refuse")(b"x", timeout=2)
    await server.stop(0)
    assert workers_announced(await check.trailing_metadata()) == workers
    assert workers_announced(refused.value.trailing_metadata()) == workers


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((("emma-workers", "2"),), 2),
        ((("other", "5"), ("emma-workers", "1")), 1),
        ((("emma-workers", "0"),), None),
        ((("emma-workers", "two"),), None),
        ((), None),
        (None, None),
    ],
)
def test_an_announced_number_of_workers_is_read_only_when_it_is_one_or_more(
    metadata: tuple[tuple[str, str], ...] | None, expected: int | None
) -> None:
    assert workers_announced(metadata) == expected
