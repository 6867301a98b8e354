"""Builds the trigger engine process: Redis, the mesh channels, the loop, a health endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis

from emma.context.v1 import context_pb2_grpc
from emma.decision.v1 import decision_pb2_grpc
from emma.learner.tasks import finish
from emma.profile.v1 import profile_pb2_grpc
from emma.runtime.channels import mesh_channel
from emma.runtime.main import run_service
from emma.runtime.server import EmmaServer, create_server
from emma.triggers.config import TriggerConfig
from emma.triggers.engine import Engine, Stubs
from emma.triggers.rules import load_rules

log = logging.getLogger(__name__)

# The health-check name of the engine (it serves no API of its own).
SERVICE_NAME = "emma.triggers.Engine"
STOP_TIMEOUT_S = 5.0


def build_server(config: TriggerConfig) -> tuple[EmmaServer, int]:
    """A health server whose start also starts the engine loop; call inside a running loop."""
    rules = load_rules(config.rules_path)  # a bad rules file stops the start, naming the field
    # Outbox entries are serialized protobufs: this client returns bytes.
    client = aioredis.Redis.from_url(
        config.redis_url, decode_responses=False, socket_connect_timeout=2.0
    )
    channels = [
        mesh_channel(config.profile_addr),
        mesh_channel(config.context_addr),
        mesh_channel(config.decision_addr),
    ]
    stubs = Stubs(
        profile=profile_pb2_grpc.ProfileServiceStub(channels[0]),
        context=context_pb2_grpc.ContextServiceStub(channels[1]),
        decision=decision_pb2_grpc.DecisionServiceStub(channels[2]),
    )
    engine = Engine(config, rules, client, stubs)
    server, port = create_server(config.host, config.port, [SERVICE_NAME])
    task = asyncio.get_running_loop().create_task(engine.run(), name="emma-triggers")

    async def close() -> None:
        await engine.stop()
        if not await finish(task, STOP_TIMEOUT_S):
            log.warning("trigger engine did not stop in time; pending events are claimed later")
        for channel in channels:
            await channel.close(None)
        await client.aclose()

    server.on_stop(close)
    log.info("trigger engine built", extra={"rules": [rule.name for rule in rules.rules]})
    return server, port


def main(argv: Sequence[str] | None = None) -> int:
    return run_service("emma-triggers", TriggerConfig, build_server, argv)
