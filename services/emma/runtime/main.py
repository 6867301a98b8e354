"""The shared `main()` of every service: config, logging, tracing, serve until signalled."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from emma.runtime import eventloop
from emma.runtime.config import ConfigError, load_config
from emma.runtime.heap import freeze_heap
from emma.runtime.logs import configure_logging
from emma.runtime.metrics import configure_metrics
from emma.runtime.redis_metrics import RedisLatencyProcessor
from emma.runtime.server import EmmaServer, serve_until_signalled
from emma.runtime.tracing import configure_tracing, shutdown_tracing
from emma.runtime.worker_metrics import WORKER_HOST, serve_worker_metrics
from emma.runtime.workers import Supervisor, reserve_port

log = logging.getLogger(__name__)


class _StartupError(Exception):
    """Building the server failed before it could serve."""


class ServiceConfig(Protocol):
    @property
    def shutdown_grace_s(self) -> float: ...

    @property
    def host(self) -> str: ...

    @property
    def metrics_port(self) -> int: ...


C = TypeVar("C", bound=ServiceConfig)

# Set in each worker process of a service that runs several: its index, from 0.
WORKER_INDEX_ENV = "EMMA_WORKER_INDEX"


def run_service(
    name: str,
    config_type: type[C],
    build_server: Callable[[C], tuple[EmmaServer, int]],
    argv: Sequence[str] | None = None,
) -> int:
    """Loads `config_type`, then builds and serves until SIGTERM/SIGINT; returns an exit code."""
    try:
        config = load_config(config_type, sys.argv[1:] if argv is None else argv, prog=name)
        loop = eventloop.loop_name()
    except (ConfigError, ValueError) as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr)
        return 2
    workers = int(getattr(config, "workers", 1))
    if workers > 1:
        return _serve_in_workers(name, config, build_server, loop, workers)
    return _serve(name, config, build_server, loop, config.metrics_port)


def _serve_in_workers(
    name: str,
    config: C,
    build_server: Callable[[C], tuple[EmmaServer, int]],
    loop: str,
    workers: int,
) -> int:
    """Serves from `workers` processes sharing one port (emma.runtime.workers)."""
    configure_logging(name)
    if getattr(config, "port", None) == 0:
        # Every worker must bind the same port: pick it here, not in each worker.
        config = dataclasses.replace(config, port=reserve_port(config.host))  # type: ignore[type-var]
    # One metrics port for the service, whatever its worker count: the supervisor serves it
    # and gathers the workers' metrics from private loopback ports (emma.runtime.worker_metrics).
    worker_ports: tuple[int, ...] = ()
    if config.metrics_port:
        worker_ports = tuple(reserve_port(WORKER_HOST) for _ in range(workers))
        try:
            serve_worker_metrics(config.host, config.metrics_port, worker_ports)
        except OSError as error:
            print(
                f"{name}: cannot serve metrics on port {config.metrics_port}: {error}",
                file=sys.stderr,
            )
            return 2
    target = functools.partial(_serve_worker, name, config, build_server, loop, worker_ports)
    return Supervisor(workers, target, name=name).run(config.shutdown_grace_s + 5.0)


def _serve_worker(
    name: str,
    config: C,
    build_server: Callable[[C], tuple[EmmaServer, int]],
    loop: str,
    worker_ports: tuple[int, ...],
    index: int,
) -> int:
    # Each worker serves its metrics on its private loopback port; the supervisor gathers.
    metrics_port = worker_ports[index] if worker_ports else 0
    # Files of a worker's own (a decision replica's spools) are named by it.
    os.environ[WORKER_INDEX_ENV] = str(index)
    return _serve(name, config, build_server, loop, metrics_port, WORKER_HOST)


def build_served(
    build_server: Callable[[C], tuple[EmmaServer, int]], config: C
) -> tuple[EmmaServer, int]:
    """`build_server(config)` as a service process runs it: once built, its heap is frozen."""
    built = build_server(config)
    freeze_heap()
    return built


def _serve(
    name: str,
    config: C,
    build_server: Callable[[C], tuple[EmmaServer, int]],
    loop: str,
    metrics_port: int,
    metrics_host: str | None = None,
) -> int:
    configure_logging(name)
    try:
        # Metrics first: the Redis latency processor records on the configured meter.
        configure_metrics(name, metrics_host or config.host, metrics_port)
    except OSError as error:
        print(f"{name}: cannot serve metrics on port {metrics_port}: {error}", file=sys.stderr)
        return 2
    configure_tracing(name).add_span_processor(RedisLatencyProcessor())

    async def serve() -> None:
        try:
            server, port = build_served(build_server, config)
        except (ValueError, OSError, RuntimeError) as error:
            # A bad data file or a taken port: say so plainly instead of a traceback.
            raise _StartupError(str(error)) from error
        await serve_until_signalled(server, port, config.shutdown_grace_s)

    try:
        eventloop.run(serve(), loop)
    except _StartupError as error:
        log.error("cannot start", extra={"error": str(error)})
        print(f"{name}: cannot start: {error}", file=sys.stderr)
        return 2
    finally:
        shutdown_tracing()
    return 0
