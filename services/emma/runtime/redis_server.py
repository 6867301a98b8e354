"""Private redis-server processes (one, or a Redis Cluster) on free loopback ports, for tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from emma.runtime.ports import free_port

__all__ = ["RedisCluster", "RedisServer", "free_port"]


class RedisServer:
    """Starts `redis-server` on a free port in a temporary directory; stops it and cleans up.

    Persistence is off unless `appendonly` is set: this server is for development
    and tests, which must never touch a Redis they did not start.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        appendonly: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra_args = tuple(extra_args)
        self._dir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(
                "redis-server is not on the PATH (Debian/Ubuntu: apt-get install redis-server)"
            )
        self._dir = tempfile.mkdtemp(prefix="emma-redis-")
        args = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self._dir,
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--protected-mode", "yes", "--logfile", str(Path(self._dir) / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self._log_tail()}")
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"redis-server not ready on port {self.port}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def _log_tail(self) -> str:
        if self._dir is None:
            return ""
        log = Path(self._dir) / "redis.log"
        return log.read_text()[-2000:] if log.exists() else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


CLUSTER_SLOTS = 16384


class RedisCluster:
    """A Redis Cluster of `masters` private redis-server processes without replicas.

    Each node gets a free port and a free cluster bus port; the slots are split evenly
    and the nodes meet directly (no redis-cli needed). `url` is the `redis+cluster://`
    form that emma.runtime.redis_client.connect_any_redis understands.
    """

    def __init__(self, masters: int = 3) -> None:
        if masters < 1:
            raise ValueError("a cluster needs at least one master")
        self.nodes = [
            RedisServer(
                extra_args=[
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-port", str(free_port()),
                    "--cluster-node-timeout", "2000",
                ]
            )
            for _ in range(masters)
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self, timeout: float = 20.0) -> RedisCluster:
        try:
            for node in self.nodes:
                node.start(timeout)
            self._form(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self, timeout: float) -> None:
        clients = [redis.Redis(port=node.port, decode_responses=True) for node in self.nodes]
        # redis-py leaves execute_command untyped.
        commands: list[Any] = [client.execute_command for client in clients]
        try:
            share = CLUSTER_SLOTS // len(clients)
            for index, command in enumerate(commands):
                first = index * share
                last = CLUSTER_SLOTS - 1 if index == len(clients) - 1 else first + share - 1
                # Distinct config epochs, as redis-cli sets them, so no collision round is needed.
                command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
                command("CLUSTER", "ADDSLOTSRANGE", first, last)
            for node in self.nodes[1:]:
                bus_port = node.extra_args[node.extra_args.index("--cluster-port") + 1]
                commands[0]("CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)
            deadline = time.monotonic() + timeout
            while not all(self._ready(command) for command in commands):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis cluster on ports {self.ports} did not form")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()

    def _ready(self, command: Any) -> bool:
        info = command("CLUSTER", "INFO")
        fields = dict(line.split(":", 1) for line in str(info).splitlines() if ":" in line)
        return (
            fields.get("cluster_state") == "ok"
            and fields.get("cluster_slots_ok") == str(CLUSTER_SLOTS)
            and fields.get("cluster_known_nodes") == str(len(self.nodes))
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
