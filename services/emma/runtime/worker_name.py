"""Every answer names the worker process that gave it and how many share its port."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from emma.runtime.method_handlers import Handler, WrappingInterceptor, rewrapped
from emma_client.base import WORKER_HEADER, WORKERS_HEADER


class WorkerNameInterceptor(WrappingInterceptor):
    """Puts this server's name, a random token drawn when it is made, in the trailing
    metadata of every unary call (WORKER_HEADER), with the number of worker processes
    serving its port (WORKERS_HEADER).

    A service's worker processes share one port, and the kernel gives each connection to
    one of them: a caller's eight connections may reach one worker through seven and the
    other through one. The SDK reads the name to count its calls in flight per worker,
    not per connection (emma_client.base.LeastBusy). A random token, not the process id:
    it tells callers nothing about the host. The number tells a caller whose connections
    all reached one worker that others exist (emma.loadgen.driver.reach_every_worker).
    """

    def __init__(self, workers: int = 1) -> None:
        super().__init__()
        self.name = secrets.token_hex(6)
        self._trailer = ((WORKER_HEADER, self.name), (WORKERS_HEADER, str(workers)))

    def wrap(self, handler: Handler, method: str) -> Handler:
        trailer = self._trailer

        def named(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                # No handler of Emma sets trailing metadata, which would replace this.
                context.set_trailing_metadata(trailer)
                return await behaviour(request, context)

            return call

        return rewrapped(handler, unary_unary=named)
