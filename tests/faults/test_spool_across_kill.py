"""Held writes survive SIGKILL with a spool: the next process on the same spools writes them.

A child process holds decision-log entries and outcomes for a Redis that refuses them, with
spools on; it is killed with SIGKILL; a new buffer on the same spools, with Redis up,
writes every one of them, also when the killed process was a worker that no longer runs
(a replica with fewer workers than before: one of them takes its spools over).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from emma.decision.decision_log import DecisionStore
from emma.decision.log_buffer import LogBuffer
from emma.decision.outcome_buffer import OutcomeBuffer
from emma.runtime.redis_client import connect_redis
from emma.runtime.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ("emma:decisions", "emma:rewards")

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from emma.decision.decision_log import DecisionStore, EncodedDecision
    from emma.decision.log_buffer import LogBuffer
    from emma.decision.outcome_buffer import HeldActivation, HeldReward, OutcomeBuffer
    from emma.runtime.redis_client import connect_redis

    async def main(url: str, spools: Path, worker: str) -> None:
        store = DecisionStore(connect_redis(url), "emma:decisions", "emma:rewards", 1000, 60)
        log = LogBuffer(store, 100, spool_path=spools / f"decision-log-{worker}.spool")
        held = OutcomeBuffer(store, 100, spool_path=spools / f"outcomes-{worker}.spool")
        for i in range(5):
            log.keep(EncodedDecision(
                "emma:decisions", {"event_id": f"e{i}", "json": "{}"}, 1000,
                f"emma:decision:e{i}", "{}", 60,
            ))
        now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
        held.hold(HeldActivation("e0", now))
        held.hold(HeldReward("e0", 1.0, "buy", now, "order-1"))
        print("held", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
    """
)


@pytest.mark.parametrize("killed_worker", [0, 3], ids=["same-worker", "fewer-workers"])
async def test_held_writes_left_by_a_killed_process_are_written_by_its_successor(
    redis_url: str, tmp_path: Path, killed_worker: int
) -> None:
    # Worker 3 of a replica that now runs fewer workers: worker 0 takes its spools over.
    refused = f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'services'}{os.pathsep}{ROOT}"}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        refused,
        str(tmp_path),
        str(killed_worker),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"held\n"
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()

    client = connect_redis(redis_url)
    await client.delete(*STREAMS)
    store = DecisionStore(client, *STREAMS, 1000, 60)
    log = LogBuffer(store, 100, spool_path=tmp_path / "decision-log-0.spool")
    held = OutcomeBuffer(store, 100, spool_path=tmp_path / "outcomes-0.spool")
    orphans = (
        ([tmp_path / "decision-log-3.spool"], [tmp_path / "outcomes-3.spool"])
        if killed_worker
        else ([], [])
    )
    assert (log.restore(orphans[0]), held.restore(orphans[1])) == (5, 2)
    await asyncio.wait_for(asyncio.gather(log.drained(), held.drained()), 30)
    decisions = await client.xrange("emma:decisions")
    assert [fields["event_id"] for _, fields in decisions] == [f"e{i}" for i in range(5)]
    outcomes = await client.xrange("emma:rewards")
    assert [(f["event_id"], f["type"]) for _, f in outcomes] == [
        ("e0", "activation"),
        ("e0", "reward"),
    ]
    assert not any(path.exists() for path in orphans[0] + orphans[1])
    # Written: the spools are empty, so a third start writes nothing again.
    assert (await log.close(1.0), await held.close(1.0)) == (0, 0)
    again = LogBuffer(store, 100, spool_path=tmp_path / "decision-log-0.spool")
    assert again.restore() == 0
    await again.close(1.0)
    await client.delete(*STREAMS, *(f"emma:decision:e{i}" for i in range(5)))
    await client.aclose()
