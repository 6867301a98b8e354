"""A private redis-server on a free loopback port, for `emma up` and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """Starts `redis-server` on a free port in a temporary directory; stops it and cleans up.

    Persistence is off unless `appendonly` is set: this server is for development
    and tests, which must never touch a Redis they did not start.
    """

    def __init__(self, *, port: int | None = None, appendonly: bool = False) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
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
