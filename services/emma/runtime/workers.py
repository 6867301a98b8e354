"""Several processes serving one port (SO_REUSEPORT), supervised by the process that spawned them.

A Python server uses one core; N worker processes each run the same gRPC server bound to
the same port with `grpc.so_reuseport=1`, and the kernel spreads new connections over
them. The parent only supervises: it forwards SIGTERM/SIGINT to every worker, waits for
them to drain, and restarts a worker that exits on its own (a crash), with a growing
delay if it keeps crashing at once. Workers are spawned, not forked: gRPC and event loops
do not survive a fork.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from emma.runtime.ports import free_port

log = logging.getLogger(__name__)

# A worker that ran at least this long before dying is restarted at once; quicker deaths
# double the delay (up to MAX_RESTART_DELAY_S), so a crash loop does not spin the CPU.
STABLE_AFTER_S = 10.0
FIRST_RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 30.0

# Runs worker `index` until SIGTERM/SIGINT and returns its exit code; it must be picklable
# (a module-level function or a functools.partial of one), as workers are spawned.
Target = Callable[[int], Any]


def reserve_port(host: str) -> int:
    """A port that is free now on `host`, for workers that must all bind the same one."""
    return free_port(host)


def _run_target(target: Target, index: int) -> None:
    code = target(index)
    raise SystemExit(code if isinstance(code, int) else 0)


class Supervisor:
    """Spawns `count` workers running `target(index)`; restarts crashed ones until stopped."""

    def __init__(self, count: int, target: Target, *, name: str = "emma") -> None:
        if count < 1:
            raise ValueError(f"workers: expected at least 1, got {count}")
        self.count = count
        self.target = target
        self.name = name
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess | None] = [None] * count
        self._started_at = [0.0] * count
        self._delays = [0.0] * count
        self._due = [0.0] * count  # when a dead worker may be started again
        self._stopping = False
        self._stop_requested_at = 0.0
        self.restarts = 0

    def restart_delay(self, index: int) -> float:
        """The delay before worker `index` was last restarted (0 after a stable run)."""
        return self._delays[index]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._workers if p is not None and p.pid is not None]

    def _spawn(self, index: int) -> None:
        process = self._context.Process(
            target=_run_target,
            args=(self.target, index),
            name=f"{self.name}-worker-{index}",
            daemon=False,
        )
        process.start()
        self._workers[index] = process
        self._started_at[index] = time.monotonic()
        log.info("worker started", extra={"worker": index, "pid": process.pid})

    def start(self) -> None:
        for index in range(self.count):
            self._spawn(index)

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Asks every worker to stop (forwards `signum`); `supervise` then returns."""
        if not self._stopping:
            self._stopping, self._stop_requested_at = True, time.monotonic()
        for process in self._workers:
            if process is not None and process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def _reap(self) -> None:
        """Notes dead workers and schedules their restart (unless stopping)."""
        now = time.monotonic()
        for index, process in enumerate(self._workers):
            if process is None or process.is_alive():
                continue
            process.join()
            self._workers[index] = None
            if self._stopping:
                continue
            lived = now - self._started_at[index]
            delay = self._delays[index]
            delay = (
                0.0
                if lived >= STABLE_AFTER_S
                else min(MAX_RESTART_DELAY_S, max(FIRST_RESTART_DELAY_S, 2 * delay))
            )
            self._delays[index] = delay
            self._due[index] = now + delay
            log.warning(
                "worker exited; restarting",
                extra={
                    "worker": index,
                    "exit_code": process.exitcode,
                    "restart_in_s": round(delay, 3),
                },
            )

    def supervise(self, grace_s: float = 10.0, poll_s: float = 0.5) -> None:
        """Restarts workers that die until request_stop; then returns once all have exited,
        or `grace_s` after the stop was requested."""
        while True:
            live = [p.sentinel for p in self._workers if p is not None]
            if self._stopping and (
                not live or time.monotonic() - self._stop_requested_at > grace_s
            ):
                return
            if live:
                wait(live, timeout=poll_s)
            else:
                time.sleep(poll_s)
            self._reap()
            if self._stopping:
                continue
            now = time.monotonic()
            for index, process in enumerate(self._workers):
                if process is None and now >= self._due[index]:
                    self.restarts += 1
                    self._spawn(index)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stops every worker: SIGTERM, then SIGKILL for any still alive after `timeout_s`."""
        self.request_stop()
        deadline = time.monotonic() + timeout_s
        for process in self._workers:
            if process is not None:
                process.join(max(0.0, deadline - time.monotonic()))
        for process in self._workers:
            if process is not None and process.is_alive():
                process.kill()
                process.join()
        self._workers = [None] * self.count

    def run(self, grace_s: float = 10.0) -> int:
        """Starts the workers and supervises them until SIGTERM/SIGINT; returns an exit code.

        The signal is forwarded to every worker, which drains its calls (its own grace
        period); a worker still alive `grace_s` later is killed.
        """

        def forward(signum: int, frame: FrameType | None) -> None:
            log.info("stopping workers", extra={"signal": signal.Signals(signum).name})
            self.request_stop(signum)

        previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            self.supervise(grace_s)
        finally:
            self.stop(0)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0
