"""A service built as `emma serve` builds it, plus an echo method: the ping-pong reference."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from multiprocessing.connection import Connection

import grpc

from emma.runtime.server import EmmaServer
from emma.runtime.tracing import configure_tracing

ECHO_SERVICE = "emma.bench.v1.Echo"


async def _echo(request: bytes, context: object) -> bytes:
    return request


def serve_with_echo(
    service_name: str, build: Callable[[], tuple[EmmaServer, int]], connection: Connection
) -> None:
    """Runs in a child process: sends the port, serves until told to stop over `connection`.

    The echo shares the server, its event loop and its interceptors, so the difference
    between a service method and the echo is the method's own work.
    """
    configure_tracing(service_name)

    async def run() -> None:
        server, port = build()
        echo = grpc.method_handlers_generic_handler(
            ECHO_SERVICE, {"Ping": grpc.unary_unary_rpc_method_handler(_echo)}
        )
        server.grpc_server.add_generic_rpc_handlers((echo,))
        await server.start()
        connection.send(port)
        await asyncio.get_running_loop().run_in_executor(None, connection.recv)  # until told
        await server.stop(0)

    asyncio.run(run())
