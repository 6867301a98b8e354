"""The mesh under test as separate processes that can be killed, frozen and started again."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from emma.cli.health import wait_serving
from emma.cli.mesh import SERVICE_NAMES
from emma.runtime.redis_server import free_port

# Two decision replicas behind one client target; the rest once each.
DECISION_REPLICAS = ("decision-a", "decision-b")
PROCESSES = ("profile", "context", "learner", *DECISION_REPLICAS)


def kind_of(name: str) -> str:
    """The service a process runs: `decision-a` runs the decision service."""
    return "decision" if name in DECISION_REPLICAS else name


@dataclasses.dataclass
class Process:
    name: str
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    starts: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class FaultMesh:
    """Profile, context, learner and two decision replicas on free ports, sharing `redis_url`.

    Each process keeps its port across restarts, so clients find it again; its output is
    appended to `<run_dir>/<name>.log`. `env` is added to every process's environment.
    """

    def __init__(
        self,
        redis_url: str,
        run_dir: Path,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.redis_url = redis_url
        self.run_dir = run_dir
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.processes = {
            name: Process(name, free_port(), run_dir / f"{name}.log") for name in PROCESSES
        }

    def address(self, name: str) -> str:
        return self.processes[name].address

    @property
    def decision_target(self) -> str:
        """A gRPC target naming both replicas; the client spreads calls over them."""
        ports = ",".join(f"127.0.0.1:{self.processes[n].port}" for n in DECISION_REPLICAS)
        return f"ipv4:{ports}"

    def env(self, name: str) -> dict[str, str]:
        kind = kind_of(name)
        upper = kind.upper()
        env = {**os.environ, **self.extra_env}
        env.pop("OTEL_SERVICE_NAME", None)
        env.update(
            {
                f"EMMA_{upper}_HOST": "127.0.0.1",
                f"EMMA_{upper}_PORT": str(self.processes[name].port),
                f"EMMA_{upper}_METRICS_PORT": "0",
                "EMMA_PROFILE_ADDR": self.address("profile"),
                "EMMA_CONTEXT_ADDR": self.address("context"),
                "EMMA_DECISION_ADDR": self.address(DECISION_REPLICAS[0]),
                "EMMA_REDIS_URL": self.redis_url,
                # One process per replica: a SIGKILL must end the whole replica.
                "EMMA_DECISION_WORKERS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if kind == "decision":
            # Each replica's own spools, which its restart after a kill writes out.
            env["EMMA_DECISION_SPOOL_DIR"] = str(self.run_dir / f"{name}-spool")
        return env

    def spawn(self, name: str) -> None:
        process = self.processes[name]
        if process.log_file is not None:
            process.log_file.close()
        process.log_file = process.log_path.open("ab")
        process.popen = subprocess.Popen(
            [sys.executable, "-m", f"emma.{kind_of(name)}"],
            env=self.env(name),
            stdin=subprocess.DEVNULL,
            stdout=process.log_file,
            stderr=subprocess.STDOUT,
        )
        process.starts += 1

    def wait_serving(self, name: str, timeout: float | None = None) -> None:
        process = self.processes[name]
        ready = wait_serving(
            process.address,
            SERVICE_NAMES[kind_of(name)],
            timeout or self.startup_timeout,
            alive=lambda: process.alive,
        )
        if not ready:
            raise RuntimeError(
                f"{name} is not SERVING (log {process.log_path}):\n{self.tail(name)}"
            )

    def tail(self, name: str, limit: int = 3000) -> str:
        path = self.processes[name].log_path
        return path.read_text(errors="replace")[-limit:] if path.exists() else ""

    def start(self) -> FaultMesh:
        """Dependencies first: a decision replica connects to profile and context as it starts."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            for group in (("profile", "context", "learner"), DECISION_REPLICAS):
                for name in group:
                    self.spawn(name)
                for name in group:
                    self.wait_serving(name)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, name: str) -> None:
        """SIGKILL: no drain, no goodbye, in-flight calls cut off."""
        process = self.processes[name]
        if process.popen is not None and process.alive:
            process.popen.kill()
            process.popen.wait()

    def restart(self, name: str) -> float:
        """Starts `name` again and waits until it is SERVING; returns the seconds that took."""
        started = time.monotonic()
        self.spawn(name)
        self.wait_serving(name)
        return time.monotonic() - started

    def freeze(self, name: str) -> None:
        popen = self.processes[name].popen
        if popen is not None:
            popen.send_signal(signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        popen = self.processes[name].popen
        if popen is not None:
            popen.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to all (after SIGCONT, should one be frozen), SIGKILL what outlives it."""
        live = [p for p in self.processes.values() if p.alive]
        for process in live:
            assert process.popen is not None
            process.popen.send_signal(signal.SIGCONT)
            process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in live:
            assert process.popen is not None
            try:
                process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
        for process in self.processes.values():
            if process.log_file is not None:
                process.log_file.close()
                process.log_file = None
