"""Builds the decision server: catalog, model, Redis, mesh channels, servicer and cleanups."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import redis.asyncio as aioredis

from emma.decision.bandit import Bandit, PolicyMode
from emma.decision.catalog import Catalog, load_catalog
from emma.decision.catalog_watch import CatalogWatcher
from emma.decision.config import DecisionConfig
from emma.decision.contacts import ContactGate, ContactStore
from emma.decision.decision_log import DecisionStore
from emma.decision.dependencies import ConnectedDependencies, connect_dependencies
from emma.decision.erasure import ErasureConsumer
from emma.decision.feedback import Feedback
from emma.decision.log_buffer import LogBuffer
from emma.decision.metrics import observe_log_buffer, observe_outcome_buffer
from emma.decision.outcome_buffer import OutcomeBuffer
from emma.decision.pipeline import Decider, PipelineSettings
from emma.decision.service import DecisionServicer
from emma.decision.v1 import decision_pb2, decision_pb2_grpc
from emma.learner.snapshots import ModelFollower, initial_model
from emma.learner.tasks import finish
from emma.runtime.loop_lag import LoopLag
from emma.runtime.main import WORKER_INDEX_ENV, run_service
from emma.runtime.redis_client import connect_redis
from emma.runtime.server import EmmaServer, create_server

log = logging.getLogger(__name__)

SERVICE_NAME = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name


# Seconds the model follower may take to notice it should stop (one poll at most).
FOLLOWER_STOP_S = 5.0
# Seconds the buffered decision-log entries get to be written on shutdown (10,000 entries
# take about 100 round trips); past it, with Redis still away, they stay in the spool for
# the next start, or without one are lost and counted.
LOG_FLUSH_S = 2.0
# Longest an Activate or Reward waits for this replica's buffered decision entries.
OUTCOME_WAITS_FOR_LOG_S = 0.5


@dataclasses.dataclass(frozen=True)
class DecisionCore:
    """The Decide pipeline and what it writes through, without a gRPC server around it."""

    decider: Decider
    store: DecisionStore
    contacts: ContactGate
    log_buffer: LogBuffer
    # The model version the bandit started from (None: a cold model).
    loaded: int | None


def build_decider(
    config: DecisionConfig, redis: aioredis.Redis, dependencies: ConnectedDependencies
) -> DecisionCore:
    """Catalog, model, decision log, contact policy and dependencies, wired into a Decider."""
    catalog = load_catalog(config.catalog_path, config.fallback_offer_id)
    # The latest published snapshot, so a new replica starts with what the others serve.
    model, loaded = initial_model(config.redis_url, config.model_key, config.vw_args)
    bandit = Bandit(
        config.vw_args,
        mode=PolicyMode(config.policy_mode),
        exploration_floor=config.exploration_floor,
        model=model,
    )
    store = DecisionStore(
        redis,
        config.decision_stream,
        config.reward_stream,
        config.stream_maxlen,
        config.reward_window_s,
    )
    contacts = ContactGate(
        ContactStore(redis, config.contact_key_prefix, pending_ttl_s=config.reward_window_s),
        # A capped contact's reservation and its decision-log write: one round trip.
        encode=store.encode,
    )
    # Entries whose log write failed wait here until Redis answers again.
    log_buffer = LogBuffer(
        store,
        config.log_buffer_entries,
        spool_path=spool_path(config, "decision-log") if config.log_buffer_entries else None,
    )
    observe_log_buffer(log_buffer)
    if config.log_buffer_entries > 0:
        # An outcome of a buffered decision waits (a little) for its entry to be written.
        store.settle_log = functools.partial(log_buffer.settle, OUTCOME_WAITS_FOR_LOG_S)
    decider = Decider(
        catalog,
        bandit,
        dependencies,
        store,
        PipelineSettings(
            budget_s=config.budget_ms / 1000,
            max_actions=config.max_actions,
            default_time_zone=config.default_time_zone,
            log_timeout_s=config.log_timeout_ms / 1000,
            decide_reserve_s=config.decide_reserve_ms / 1000,
            shed_lag_s=config.shed_lag_ms / 1000,
            queue_target_s=config.queue_target_ms / 1000,
        ),
        contacts=contacts,
        log_buffer=log_buffer if config.log_buffer_entries > 0 else None,
    )
    return DecisionCore(decider, store, contacts, log_buffer, loaded)


def _worker_index() -> int:
    return int(os.environ.get(WORKER_INDEX_ENV, "0"))


def spool_path(config: DecisionConfig, name: str) -> Path | None:
    """This worker's spool file of the named buffer, or None without a spool directory."""
    if not config.spool_dir:
        return None
    return Path(config.spool_dir) / f"{name}-{_worker_index()}.spool"


def orphaned_spools(config: DecisionConfig, name: str) -> list[Path]:
    """Spool files of the named buffer left by workers beyond today's count (the replica ran
    more workers before), which no worker would take up: index i goes to worker
    i % EMMA_DECISION_WORKERS."""
    if not config.spool_dir:
        return []
    indexed = []
    for path in Path(config.spool_dir).glob(f"{name}-*.spool"):
        index = path.name.removeprefix(f"{name}-").removesuffix(".spool")
        if index.isdigit():
            indexed.append((int(index), path))
    workers, mine = config.workers, _worker_index()
    return [path for i, path in sorted(indexed) if i >= workers and i % workers == mine]


def build_server(config: DecisionConfig) -> tuple[EmmaServer, int]:
    """A ready-to-start server; must be called inside a running event loop."""
    redis = connect_redis(config.redis_url)
    dependencies = connect_dependencies(config)
    core = build_decider(config, redis, dependencies)
    decider, store, contacts, log_buffer = core.decider, core.store, core.contacts, core.log_buffer
    bandit = decider.bandit

    async def count_activation(event_id: str, time: datetime) -> None:
        await contacts.activated(event_id, time, decider.catalog.policy)

    # Activations and keyed rewards wait here while Redis does not answer
    # (emma.decision.outcome_buffer).
    held = (
        OutcomeBuffer(
            store,
            config.outcome_buffer_entries,
            on_activate=count_activation,
            spool_path=spool_path(config, "outcomes"),
        )
        if config.outcome_buffer_entries
        else None
    )
    if held is not None:
        observe_outcome_buffer(held)
    server, port = create_server(config.host, config.port, [SERVICE_NAME], workers=config.workers)
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(
        DecisionServicer(decider, Feedback(store, on_activate=count_activation, held=held)),
        server.grpc_server,
    )

    # What a killed predecessor left in the spools: written first, in order.
    log_buffer.restore(orphaned_spools(config, "decision-log"))
    if held is not None:
        held.restore(orphaned_spools(config, "outcomes"))
    warm_ups = [asyncio.create_task(dependencies.warm_up())]
    # The serving loop's lag: on every Decide span, and read by overload shedding
    # (EMMA_DECISION_SHED_LAG_MS).
    loop_lag = LoopLag()
    loop_lag.start()
    decider.loop_lag = loop_lag
    server.on_stop(loop_lag.close)
    # Model bytes are binary: the follower has its own client that returns bytes.
    model_client = aioredis.Redis.from_url(
        config.redis_url, decode_responses=False, socket_connect_timeout=2.0
    )
    follower = ModelFollower(
        model_client, config.model_key, bandit, config.model_poll_s, core.loaded
    )
    following = asyncio.create_task(follower.run())

    def install(new: Catalog) -> None:
        decider.catalog = new

    if config.catalog_poll_s > 0:
        watcher = CatalogWatcher(
            config.catalog_path,
            install,
            fallback_offer_id=config.fallback_offer_id,
            interval_s=config.catalog_poll_s,
        )
        # Cancelled with the warm-ups when the server stops.
        warm_ups.append(asyncio.create_task(watcher.run()))

    if config.profile_events_stream:
        # Erasures of customers delete their contact records (one replica handles each).
        erasures = ErasureConsumer.connect(
            config.redis_url,
            redis,
            stream=config.profile_events_stream,
            group=config.erasure_group,
            key_prefix=config.contact_key_prefix,
            claim_idle_s=config.erasure_claim_idle_s,
        )
        erasures.start()
        server.on_stop(erasures.close)

    async def close() -> None:
        # First, while Redis is still open: the buffered decisions were answered already.
        await log_buffer.close(LOG_FLUSH_S)
        if held is not None:
            await held.close(LOG_FLUSH_S)
        for task in warm_ups:
            task.cancel()
        await asyncio.gather(*warm_ups, return_exceptions=True)
        await dependencies.close()
        follower.stop()
        await finish(following, FOLLOWER_STOP_S)
        await redis.aclose()
        await model_client.aclose()
        bandit.close()

    server.on_stop(close)
    log.info(
        "decision service built",
        extra={
            "offers": len(decider.catalog.offers),
            "fallback": decider.catalog.fallback.offer_id,
        },
    )
    return server, port


def main(argv: Sequence[str] | None = None) -> int:
    return run_service("emma-decision", DecisionConfig, build_server, argv)
