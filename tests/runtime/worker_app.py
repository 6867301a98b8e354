"""A tiny service for the worker tests: answers Pid with the id of the process that served it."""

from __future__ import annotations

import asyncio
import functools
import os
import sys

import grpc

from emma.runtime.server import create_server, serve_until_signalled
from emma.runtime.workers import Supervisor

SERVICE = "emma.test.v1.Workers"
PID_METHOD = f"/{SERVICE}/Pid"


async def _pid(request: bytes, context: object) -> bytes:
    return str(os.getpid()).encode()


async def _serve(port: int, workers: int) -> None:
    server, bound = create_server("127.0.0.1", port, [SERVICE], workers=workers)
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Pid": grpc.unary_unary_rpc_method_handler(_pid)}
    )
    server.grpc_server.add_generic_rpc_handlers((handler,))
    await serve_until_signalled(server, bound, grace=1.0)


def serve_pid(port: int, workers: int, index: int) -> int:
    """One of `workers` sharing `port`: serves until SIGTERM, then exits 0."""
    asyncio.run(_serve(port, workers))
    return 0


def crash(index: int) -> int:
    """A worker that fails at once (exit code 3)."""
    return 3


def main(port: int, workers: int) -> int:
    """The supervisor, as a service's main would run it."""
    supervisor = Supervisor(workers, functools.partial(serve_pid, port, workers), name="test")
    return supervisor.run(grace_s=5.0)


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]), int(sys.argv[2])))
