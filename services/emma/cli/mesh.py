"""Mesh: runs Redis, the profile, context and decision services and the learner, like `emma up`."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, TextIO

from emma.cli.health import wait_serving
from emma.cli.signals import shielded
from emma.runtime.redis_server import RedisServer, free_port

log = logging.getLogger(__name__)

# The gRPC services a client calls (`emma serve` runs one of them).
SERVICES = ("profile", "context", "decision")
# Every process of the mesh: the learner and the trigger engine serve only health checks.
PROCESSES = (*SERVICES, "learner", "triggers")
# Started first, together (start-up is mostly imports): the decision service connects to
# profile and context as it starts, and the learner creates the consumer groups.
DEPENDENCIES = ("profile", "context", "learner")
SERVICE_NAMES = {
    "profile": "emma.profile.v1.ProfileService",
    "context": "emma.context.v1.ContextService",
    "decision": "emma.decision.v1.DecisionService",
    # emma.learner.SERVICE_NAME, spelled out so the CLI does not import the learner.
    "learner": "emma.learner.Learner",
    # emma.triggers.server.SERVICE_NAME.
    "triggers": "emma.triggers.Engine",
}
DEFAULT_PORTS = {
    "decision": 50051,
    "profile": 50052,
    "context": 50053,
    "learner": 50054,
    "triggers": 50055,
}
# Prometheus /metrics ports (the EMMA_<SERVICE>_METRICS_PORT defaults), served with `metrics`.
DEFAULT_METRICS_PORTS = {
    "decision": 9461,
    "profile": 9462,
    "context": 9463,
    "learner": 9464,
    "triggers": 9465,
}


class MeshError(RuntimeError):
    """The mesh could not start; the message carries the failing service's log tail."""


@dataclasses.dataclass(frozen=True)
class MeshPorts:
    decision: int = DEFAULT_PORTS["decision"]
    profile: int = DEFAULT_PORTS["profile"]
    context: int = DEFAULT_PORTS["context"]
    learner: int = DEFAULT_PORTS["learner"]
    triggers: int = DEFAULT_PORTS["triggers"]

    @classmethod
    def free(cls) -> MeshPorts:
        """Ports that were free a moment ago, for tests and `emma demo`."""
        return cls(
            decision=free_port(),
            profile=free_port(),
            context=free_port(),
            learner=free_port(),
            triggers=free_port(),
        )

    def of(self, service: str) -> int:
        return int(getattr(self, service))


@dataclasses.dataclass
class Child:
    """One service process and the file its output goes to."""

    service: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log_tail(self, limit: int = 4000) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-limit:]


class Mesh:
    """Starts the whole mesh and stops it again, leaving nothing running.

    Without `redis_url` a private redis-server on a free port is started (and removed).
    `env` is added to the children's environment (e.g. OTEL_* settings); the children
    inherit this process's environment except OTEL_SERVICE_NAME, so that each service
    keeps its own service.name. Service output goes to `<run_dir>/<service>.log`.
    `metrics` maps services to their /metrics ports; the others serve none, so that meshes
    started side by side (tests) never compete for a metrics port.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        ports: MeshPorts | None = None,
        redis_url: str | None = None,
        env: Mapping[str, str] | None = None,
        run_dir: Path | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        metrics: Mapping[str, int] | None = None,
    ) -> None:
        self.host = host
        # Port 0 means "any free port"; resolved here, because clients must know the port.
        given = ports or MeshPorts()
        self.ports = MeshPorts(
            **{service: given.of(service) or free_port() for service in PROCESSES}
        )
        self.redis_url = redis_url
        self.extra_env = dict(env or {})
        self.metrics_ports = dict(metrics or {})
        self.run_dir = run_dir
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.children: dict[str, Child] = {}
        self._redis: RedisServer | None = None

    def address(self, service: str) -> str:
        """host:port at which clients reach `service`."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{host}:{self.ports.of(service)}"

    @property
    def decision_address(self) -> str:
        return self.address("decision")

    @property
    def profile_address(self) -> str:
        return self.address("profile")

    @property
    def context_address(self) -> str:
        return self.address("context")

    @property
    def learner_address(self) -> str:
        return self.address("learner")

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the services (kept after stop, so callers can check they are gone)."""
        return {name: child.process.pid for name, child in self.children.items()}

    def child_env(self, service: str) -> dict[str, str]:
        """The environment of one service process."""
        env = {**os.environ, **self.extra_env}
        env.pop("OTEL_SERVICE_NAME", None)
        upper = service.upper()
        env[f"EMMA_{upper}_HOST"] = self.host
        env[f"EMMA_{upper}_PORT"] = str(self.ports.of(service))
        env[f"EMMA_{upper}_METRICS_PORT"] = str(self.metrics_ports.get(service, 0))
        env["EMMA_PROFILE_ADDR"] = self.profile_address
        env["EMMA_CONTEXT_ADDR"] = self.context_address
        env["EMMA_DECISION_ADDR"] = self.decision_address
        if self.redis_url is not None:
            env["EMMA_REDIS_URL"] = self.redis_url
        # Log lines reach the file as they happen, not when a buffer fills.
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> Mesh:
        """Starts Redis (unless given) and the services; raises MeshError if one is not SERVING."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if self.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="emma-run-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.redis_url is None:
            self._redis = RedisServer().start()
            self.redis_url = self._redis.url
        deadline = time.monotonic() + self.startup_timeout
        # Dependencies first: the decision service connects to them as it starts.
        # The trigger engine calls the decision service, so it starts with it.
        for group in (DEPENDENCIES, ("decision", "triggers")):
            for service in group:
                self._spawn(service)
            for service in group:
                self._wait_serving(service, deadline)

    def _wait_serving(self, service: str, deadline: float) -> None:
        # Any child dying ends the wait at once: its log says why, no need to time out.
        ready = wait_serving(
            self.address(service),
            SERVICE_NAMES[service],
            max(0.1, deadline - time.monotonic()),
            alive=lambda: self.failed() is None,
        )
        if ready:
            return
        dead = self.failed()
        if dead is not None:
            raise MeshError(
                f"{dead.service} exited with code {dead.process.returncode} "
                f"(log {dead.log_path}):\n{dead.log_tail()}"
            )
        child = self.children[service]
        raise MeshError(
            f"{service} is not SERVING after {self.startup_timeout:.0f} s "
            f"(log {child.log_path}):\n{child.log_tail()}"
        )

    def _spawn(self, service: str) -> None:
        assert self.run_dir is not None
        log_path = self.run_dir / f"{service}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", f"emma.{service}"],
            env=self.child_env(service),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        self.children[service] = Child(service, process, log_path, log_file)

    def failed(self) -> Child | None:
        """A service that exited on its own, if any."""
        for child in self.children.values():
            if child.process.poll() is not None:
                return child
        return None

    def stop(self) -> None:
        """SIGTERM to every service, kill what outlives the timeout, then stop Redis."""
        with shielded():
            self._stop()

    def _stop(self) -> None:
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in self.children.values():
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "service did not stop in time; killing it", extra={"service": child.service}
                )
                child.process.kill()
                child.process.wait()
            child.log_file.close()
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
            self.redis_url = None

    def __enter__(self) -> Mesh:
        # `with Mesh(...).start() as mesh` must not start a second set of processes.
        return self if self.children else self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_and_report(mesh: Mesh, command: str, progress: TextIO) -> bool:
    """Starts `mesh` and waits until every service is SERVING, saying so on `progress`.

    The one start-up of `emma up`, `emma demo` and `emma simulate`. When a service fails
    to come up, prints why (its log's tail) on stderr as `emma COMMAND: ...` and returns
    False, leaving nothing running; the caller stops the mesh as usual otherwise.
    """
    started = time.monotonic()
    print(f"starting Redis, {', '.join(PROCESSES)} ...", file=progress)
    progress.flush()
    try:
        mesh.start()
    except MeshError as error:
        print(f"emma {command}: {error}", file=sys.stderr)
        return False
    elapsed = time.monotonic() - started
    print(f"mesh up in {elapsed:.1f} s; logs in {mesh.run_dir}", file=progress)
    progress.flush()
    return True
