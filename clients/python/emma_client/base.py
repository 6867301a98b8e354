"""What the synchronous and the asyncio client share: settings and per-call options."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

DEFAULT_DEADLINE_S = 2.0
# The timeout given to each call, in ms: the decision service counts a decision's budget
# from when the call was started here, not from when it reached its handler.
CALL_TIMEOUT_HEADER = "emma-call-timeout-ms"
# More connections than this to one address are more likely a mistake than a need.
MAX_CONNECTIONS = 64

T = TypeVar("T")

# The trailing metadata in which Emma's servers name the worker process that answered,
# and say how many worker processes share its port.
WORKER_HEADER = "emma-worker"
WORKERS_HEADER = "emma-workers"


def worker_named(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The worker named in a call's trailing metadata (WORKER_HEADER); None if none is."""
    for key, value in metadata or ():
        if key == WORKER_HEADER:
            return str(value)
    return None


def workers_announced(metadata: Iterable[tuple[str, Any]] | None) -> int | None:
    """How many workers share the answering server's port (WORKERS_HEADER); None if unsaid."""
    for key, value in metadata or ():
        if key == WORKERS_HEADER:
            try:
                count = int(value)
            except ValueError:
                return None
            return count if count >= 1 else None
    return None


class Slot(Generic[T]):
    """One call's connection: the item to call through, and where to say who answered."""

    __slots__ = ("_index", "_owner", "item")

    def __init__(self, owner: LeastBusy[T], index: int) -> None:
        self._owner = owner
        self._index = index
        self.item = owner.items[index]

    def answered_by(self, worker: str | None) -> None:
        """The worker that answered over this connection (WORKER_HEADER); None: unnamed."""
        if worker is not None:
            self._owner._named(self._index, worker)


class LeastBusy(Generic[T]):
    """A client's connections (or what calls through them); each call goes to the worker
    process with the fewest calls in flight, over its least busy connection, ties in turn.
    Safe from several threads.

    A server's worker processes share its port, and the kernel gives each new connection
    to one of them at random: eight connections may well reach one worker through seven
    and the other through one. Counting calls per connection would then send seven calls
    in eight to the first worker whenever few calls overlap, and its queue would grow while
    the other idles. Emma's servers name their worker in every answer (WORKER_HEADER): once
    a connection has answered, its calls count for that worker, and the workers take
    turns. A connection not named yet (or to a server that names none) counts as a worker
    of its own. A connection that is replaced (the server's connection age) may reach
    another worker; its next answer says so.
    """

    def __init__(self, items: Sequence[T]) -> None:
        if not items:
            raise ValueError("no connection to use")
        self.items = tuple(items)
        count = len(self.items)
        self._busy = [0] * count
        # When each connection and each worker was last chosen, in choices made: the
        # least recently chosen goes first among equals, so ties go round.
        self._chosen_at = [0] * count
        self._choices = 0
        # Each connection's worker: its name once known, else the connection's own index.
        self._worker: list[str | int] = list(range(count))
        self._worker_busy: dict[str | int, int] = dict.fromkeys(range(count), 0)
        self._worker_chosen_at: dict[str | int, int] = dict.fromkeys(range(count), 0)
        self._lock = threading.Lock()

    def _rank(self, index: int) -> tuple[int, int, int, int]:
        worker = self._worker[index]
        return (
            self._worker_busy[worker],
            self._worker_chosen_at[worker],
            self._busy[index],
            self._chosen_at[index],
        )

    @contextlib.contextmanager
    def use(self) -> Iterator[Slot[T]]:
        """The connection for the next call, counted as busy until the block ends."""
        with self._lock:
            chosen = min(range(len(self.items)), key=self._rank)
            worker = self._worker[chosen]
            self._choices += 1
            self._chosen_at[chosen] = self._worker_chosen_at[worker] = self._choices
            self._busy[chosen] += 1
            self._worker_busy[worker] += 1
        try:
            yield Slot(self, chosen)
        finally:
            with self._lock:
                self._busy[chosen] -= 1
                self._worker_busy[self._worker[chosen]] -= 1

    def _named(self, index: int, name: str) -> None:
        with self._lock:
            old = self._worker[index]
            if old == name:
                return
            busy = self._busy[index]
            self._worker[index] = name
            self._worker_busy[old] -= busy
            self._worker_busy[name] = self._worker_busy.get(name, 0) + busy
            self._worker_chosen_at.setdefault(name, self._chosen_at[index])
            if old not in self._worker:
                # No connection reaches it any more.
                del self._worker_busy[old], self._worker_chosen_at[old]

    def in_flight(self) -> list[int]:
        """Calls in flight on each item, in order."""
        with self._lock:
            return list(self._busy)

    def workers(self) -> list[str | None]:
        """The worker each item reaches, in order; None where none has been named."""
        with self._lock:
            return [worker if isinstance(worker, str) else None for worker in self._worker]


class ClientSettings:
    """The address, default deadline, wait-for-ready choice and number of connections of
    a client, validated."""

    def __init__(
        self,
        address: str,
        deadline: float,
        wait_for_ready: bool,
        token: str | None = None,
        connections: int = 1,
    ) -> None:
        if deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds, got {deadline}")
        if not 1 <= connections <= MAX_CONNECTIONS:
            raise ValueError(f"connections must be 1..{MAX_CONNECTIONS}, got {connections}")
        if token is not None and (not token or token != token.strip() or " " in token):
            raise ValueError("token must be non-empty and without spaces")
        self.address = address
        self.deadline = deadline
        self.wait_for_ready = wait_for_ready
        self.connections = connections
        # Sent as metadata, not as call credentials: those need TLS, and a service behind a
        # TLS-terminating proxy still checks the token.
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )

    def _call_options(self, deadline: float | None) -> dict[str, Any]:
        """gRPC call options: the call's own deadline, else the client's default, also sent
        as metadata (CALL_TIMEOUT_HEADER)."""
        timeout = deadline or self.deadline
        return {
            "timeout": timeout,
            "wait_for_ready": self.wait_for_ready,
            "metadata": (*self._metadata, (CALL_TIMEOUT_HEADER, f"{timeout * 1000:.0f}")),
        }
