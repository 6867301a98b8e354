"""A gRPC aio server with health checking, reflection, tracing and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]  # stubs lag
from grpc_reflection.v1alpha import reflection

from emma.runtime.auth import auth_interceptors, warn_if_exposed
from emma.runtime.connection_age import ConnectionAge, load_connection_age
from emma.runtime.limits import DEFAULT_MESSAGE_BYTES, MessageLimits, load_message_limits
from emma.runtime.metrics import RpcMetricsInterceptor
from emma.runtime.security import SecurityConfig, load_security, server_credentials
from emma.runtime.tracing import server_interceptors
from emma.runtime.undecodable import UndecodableRequestInterceptor
from emma.runtime.worker_name import WorkerNameInterceptor

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = DEFAULT_MESSAGE_BYTES

Cleanup = Callable[[], Awaitable[None]]


class EmmaServer:
    """A started-on-demand gRPC server that reports its health per service name."""

    def __init__(
        self, server: grpc.aio.Server, service_names: Iterable[str], reflection_on: bool = True
    ) -> None:
        self.grpc_server = server
        self.health = health_aio.HealthServicer()
        self.service_names = list(service_names)
        self._cleanups: list[Cleanup] = []
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        if reflection_on:
            reflection.enable_server_reflection(
                [*self.service_names, health_name, reflection.SERVICE_NAME], server
            )

    def on_stop(self, cleanup: Cleanup) -> None:
        """Registers a coroutine to run after the server stopped (close pools, flush logs)."""
        self._cleanups.append(cleanup)

    async def start(self) -> None:
        await self.grpc_server.start()
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        """Reports NOT_SERVING, lets calls in flight finish within `grace` s, then cleans up."""
        await self.health.enter_graceful_shutdown()
        await self.grpc_server.stop(grace)
        for cleanup in reversed(self._cleanups):
            try:
                await cleanup()
            except Exception:
                log.exception("cleanup failed during shutdown")


def create_server(
    host: str,
    port: int,
    service_names: Iterable[str],
    *,
    max_message_bytes: int | None = None,
    limits: MessageLimits | None = None,
    security: SecurityConfig | None = None,
    workers: int = 1,
    connection_age: ConnectionAge | None = None,
) -> tuple[EmmaServer, int]:
    """Creates a traced aio server on host:port (0 picks a free port); returns it and the port.

    TLS, caller checks and reflection follow `security` (the EMMA_TLS_* etc. variables when
    None; docs/security.md). `workers` > 1 lets that many processes bind the same port
    (emma.runtime.workers), and every answer says how many do. Message sizes follow
    `limits` (EMMA_MAX_*_MESSAGE_BYTES when None), or `max_message_bytes` both ways when
    given; callers are asked to reconnect after `connection_age` (EMMA_MAX_CONNECTION_AGE_S
    when None).
    """
    security = security or load_security()
    if max_message_bytes is not None:
        limits = MessageLimits(max_message_bytes, max_message_bytes)
    limits = limits or load_message_limits()
    connection_age = connection_age or load_connection_age()
    server = grpc.aio.server(
        # Metrics outside the caller checks, so refused calls count under their status code.
        interceptors=[
            # Outermost, so that calls refused by the others name their worker too.
            WorkerNameInterceptor(workers),
            *server_interceptors(),
            RpcMetricsInterceptor(),
            *auth_interceptors(security),
            # Innermost: the others see an unparseable request's INVALID_ARGUMENT as any other.
            UndecodableRequestInterceptor(),
        ],
        options=[
            *limits.options(),
            *connection_age.options(),
            # Off unless several worker processes share the port (emma.runtime.workers):
            # a port another server holds must fail to bind, not be silently shared.
            ("grpc.so_reuseport", 1 if workers > 1 else 0),
        ],
    )
    credentials = server_credentials(security)
    if credentials is None:
        bound = server.add_insecure_port(f"{host}:{port}")
    else:
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}")
    warn_if_exposed(host, security)
    return EmmaServer(server, service_names, security.reflection), bound


async def serve_until_signalled(server: EmmaServer, port: int, grace: float) -> None:
    """Runs the server until SIGTERM or SIGINT, then shuts it down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    log.info("serving", extra={"port": port, "services": server.service_names})
    await stop.wait()
    log.info("stopping", extra={"grace_seconds": grace})
    await server.stop(grace)
    log.info("stopped")
