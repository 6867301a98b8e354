"""`python -m emma.learner` as a process: killed mid-stream it loses nothing, SIGTERM stops it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from emma.cli.health import wait_serving
from emma.decision.decision_log import DecisionStore
from emma.learner import SERVICE_NAME
from emma.runtime.redis_server import free_port

from .conftest import WINDOW_S, log_decision, pending, wait_for_snapshot


def start(redis_url: str, port: int, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EMMA_REDIS_URL": redis_url,
        "EMMA_LEARNER_PORT": str(port),
        "EMMA_REWARD_WINDOW_S": str(WINDOW_S),
        "EMMA_LEARNER_PUBLISH_S": "0.1",
        "EMMA_LEARNER_BLOCK_MS": "20",
        "EMMA_LEARNER_LEASE_S": "1",
        **extra,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "emma.learner"], env=env, stdout=out, stderr=out
        )


async def produce(store: DecisionStore, count: int) -> None:
    for round_ in range(count):
        event_id = await log_decision(store, round_ % 3)
        await store.reward(event_id, float(round_ % 3 == 1), "click", datetime.now(UTC))


async def test_a_killed_learner_process_resumes_exactly_where_its_checkpoint_ends(
    store: DecisionStore, raw: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "learner.log"
    first = start(redis_url, port, log)
    try:
        assert await asyncio.to_thread(wait_serving, f"127.0.0.1:{port}", SERVICE_NAME, 30)
        await produce(store, 40)
        await wait_for_snapshot(raw, lambda s: s.meta["updates"] >= 10, within_s=20)
        producing = asyncio.create_task(produce(store, 40))
        await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # no final checkpoint, the lease left behind
        assert first.wait(timeout=10) == -signal.SIGKILL
        await producing
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    second = start(redis_url, port, log)
    try:
        snapshot = await wait_for_snapshot(raw, lambda s: s.meta["updates"] == 80, within_s=30)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0, log.read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    final = await wait_for_snapshot(raw, lambda s: True)
    assert final.meta["updates"] == 80 == final.meta["counts"]["learned"]
    assert final.version >= snapshot.version
    assert await pending(raw) == 0
    # The lease was released on SIGTERM: a next learner need not wait for it to expire.
    assert await raw.get("emma:model:lease") is None
