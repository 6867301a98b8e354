"""RPC metrics: every call is counted by method and status code and served for Prometheus."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider

from emma.runtime.metrics import RpcMetricsInterceptor, configure_metrics
from emma.runtime.redis_server import free_port

SERVICE = "emma.test.v1.Echo"


async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    if request == b"bad":
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "field: bad")
    if request == b"boom":
        raise RuntimeError("unexpected")
    return request


@pytest.fixture
async def metrics_port() -> AsyncIterator[int]:
    port = free_port()
    provider = configure_metrics("emma-test", "127.0.0.1", port)
    yield port
    provider.shutdown()
    metrics.set_meter_provider(MeterProvider())


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        return str(page.read().decode())


async def test_calls_are_measured_by_method_and_status(metrics_port: int) -> None:
    server = grpc.aio.server(interceptors=[RpcMetricsInterceptor()])
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Say": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            say = channel.unary_unary(f"/{SERVICE}/Say", None, None)
            for _ in range(3):
                assert await say(b"hello") == b"hello"
            for payload, code in ((b"bad", "INVALID_ARGUMENT"), (b"boom", "UNKNOWN")):
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await say(payload)
                assert error.value.code().name == code
    finally:
        await server.stop(None)
    text = await asyncio.to_thread(scrape, metrics_port)
    counts = {
        line.split("rpc_grpc_status_code=")[1].split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("rpc_server_duration_seconds_count") and 'rpc_method="Say"' in line
    }
    assert counts == {"OK": 3.0, "INVALID_ARGUMENT": 1.0, "UNKNOWN": 1.0}
    assert 'le="0.001"' in text
