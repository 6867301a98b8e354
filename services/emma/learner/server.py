"""Builds the learner process: Redis, the learning loop, and a gRPC health endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis

from emma.learner.config import LearnerConfig
from emma.learner.learner import Learner
from emma.runtime.main import run_service
from emma.runtime.server import EmmaServer, create_server

log = logging.getLogger(__name__)

# The health-check name of the learner (it serves no API of its own).
SERVICE_NAME = "emma.learner.Learner"
# Seconds the final checkpoint may take on shutdown before the loop is cancelled.
STOP_TIMEOUT_S = 10.0


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancels until the task is done: on Python 3.11 `asyncio.wait_for`, which redis-py
    uses for socket timeouts, can swallow a cancellation that meets a finishing command."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


def build_server(config: LearnerConfig) -> tuple[EmmaServer, int]:
    """A ready-to-start health server whose start also starts the learner; call in a loop."""
    # Model bytes are binary: this client returns bytes, and the learner decodes text itself.
    client = aioredis.Redis.from_url(
        config.redis_url, decode_responses=False, socket_connect_timeout=2.0
    )
    learner = Learner(config, client)
    server, port = create_server(config.host, config.port, [SERVICE_NAME])
    task = asyncio.get_running_loop().create_task(learner.run(), name="emma-learner")

    async def close() -> None:
        await learner.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("learner did not stop in time; its work since the checkpoint is redone")
            await cancel(task)
        await client.aclose()

    server.on_stop(close)
    log.info(
        "learner built",
        extra={"aggregation": config.aggregation, "window_s": config.reward_window_s},
    )
    return server, port


def main(argv: Sequence[str] | None = None) -> int:
    return run_service("emma-learner", LearnerConfig, build_server, argv)
