"""The shared `main()` of every service: config, logging, tracing, serve until signalled."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from emma.runtime.config import ConfigError, load_config
from emma.runtime.logs import configure_logging
from emma.runtime.server import EmmaServer, serve_until_signalled
from emma.runtime.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger(__name__)


class _StartupError(Exception):
    """Building the server failed before it could serve."""


class ServiceConfig(Protocol):
    @property
    def shutdown_grace_s(self) -> float: ...


C = TypeVar("C", bound=ServiceConfig)


def run_service(
    name: str,
    config_type: type[C],
    build_server: Callable[[C], tuple[EmmaServer, int]],
    argv: Sequence[str] | None = None,
) -> int:
    """Loads `config_type`, then builds and serves until SIGTERM/SIGINT; returns an exit code."""
    try:
        config = load_config(config_type, sys.argv[1:] if argv is None else argv, prog=name)
    except ConfigError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(name)
    configure_tracing(name)

    async def serve() -> None:
        try:
            server, port = build_server(config)
        except (ValueError, OSError, RuntimeError) as error:
            # A bad data file or a taken port: say so plainly instead of a traceback.
            raise _StartupError(str(error)) from error
        await serve_until_signalled(server, port, config.shutdown_grace_s)

    try:
        asyncio.run(serve())
    except _StartupError as error:
        log.error("cannot start", extra={"error": str(error)})
        print(f"{name}: cannot start: {error}", file=sys.stderr)
        return 2
    finally:
        shutdown_tracing()
    return 0
