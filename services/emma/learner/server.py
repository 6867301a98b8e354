"""Builds the learner process: Redis, the learning loop, and a gRPC health endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis

from emma.learner.config import LearnerConfig
from emma.learner.learner import Learner
from emma.learner.metrics import observe_learner
from emma.learner.tasks import finish
from emma.runtime.main import run_service
from emma.runtime.server import EmmaServer, create_server

log = logging.getLogger(__name__)

# The health-check name of the learner (it serves no API of its own).
SERVICE_NAME = "emma.learner.Learner"
# Seconds the final checkpoint may take on shutdown before the loop is cancelled.
STOP_TIMEOUT_S = 10.0


def build_server(config: LearnerConfig) -> tuple[EmmaServer, int]:
    """A ready-to-start health server whose start also starts the learner; call in a loop."""
    # Model bytes are binary: this client returns bytes, and the learner decodes text itself.
    client = aioredis.Redis.from_url(
        config.redis_url, decode_responses=False, socket_connect_timeout=2.0
    )
    learner = Learner(config, client)
    observe_learner(learner)
    server, port = create_server(config.host, config.port, [SERVICE_NAME])
    task = asyncio.get_running_loop().create_task(learner.run(), name="emma-learner")

    async def close() -> None:
        await learner.stop()
        if not await finish(task, STOP_TIMEOUT_S):
            log.warning("learner did not stop in time; its work since the checkpoint is redone")
        await client.aclose()

    server.on_stop(close)
    log.info(
        "learner built",
        extra={"aggregation": config.aggregation, "window_s": config.reward_window_s},
    )
    return server, port


def main(argv: Sequence[str] | None = None) -> int:
    return run_service("emma-learner", LearnerConfig, build_server, argv)
