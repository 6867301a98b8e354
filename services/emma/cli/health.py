"""Waiting for a gRPC service to report SERVING through the standard health protocol."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# A starting service should be seen within a few tens of ms, not after gRPC's 1 s+ backoff.
_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
]


def check(address: str, service: str, timeout: float = 0.5) -> bool:
    """True when `service` at `address` answers SERVING right now."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def wait_serving(
    address: str,
    service: str,
    timeout: float,
    *,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.05,
) -> bool:
    """Polls until `service` is SERVING (True), or the timeout passes or `alive()` fails (False)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address, options=_FAST_RECONNECT) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        while time.monotonic() < deadline and alive():
            try:
                response = stub.Check(request, timeout=0.5, wait_for_ready=False)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(interval)
    return False
