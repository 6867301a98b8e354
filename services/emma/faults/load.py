"""The steady load of a fault run: open-loop Decide calls through the SDK, some deferred and
activated, half of them rewarded."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2
from emma.loadgen import workload
from emma.loadgen.schedule import Sent
from emma_client import AsyncEmmaClient, EmmaError
from emma_client.models import Decision

DECIDE = "decide"
ACTIVATE = "activate"
REWARD = "reward"
# Longer than any budget: a call that needs it is late, but it is not counted as an error.
DEFAULT_DEADLINE_S = 2.0


@dataclasses.dataclass(frozen=True)
class Call:
    """One call as its caller saw it (perf_counter seconds; `error` empty when it succeeded)."""

    kind: str
    due: float
    sent: float
    done: float
    error: str = ""
    degraded: tuple[str, ...] = ()
    fallback: bool = False
    event_id: str = ""
    key: str = ""
    trace_id: str = ""
    # The decision service's own time for a Decide (its server span), when known.
    server_ms: float | None = None

    @property
    def latency_ms(self) -> float:
        return (self.done - self.due) * 1000

    @property
    def send_lag_ms(self) -> float:
        """How late the load generator sent it: its own backlog, not the mesh's."""
        return (self.sent - self.due) * 1000


TOUCHPOINTS = {
    common_pb2.TOUCHPOINT_POS: "pos",
    common_pb2.TOUCHPOINT_APP: "app",
}


def decide_options(request: decision_pb2.DecideRequest) -> dict[str, Any]:
    """The SDK's keyword arguments for one of the benchmark's Decide requests."""
    options: dict[str, Any] = {
        "touchpoint": TOUCHPOINTS[request.touchpoint],
        "customer_id": request.customer.value,
        "device": request.device,
    }
    if request.store_id:
        options["store_id"] = request.store_id
    if request.HasField("basket"):
        options["basket"] = [
            (item.product_id, item.category, item.quantity, item.amount)
            for item in request.basket.items
        ]
    if request.HasField("location"):
        options["location"] = (request.location.latitude, request.location.longitude)
    return options


class Load:
    """Decide at `rate` per second, open loop; every `reward_every`-th answered decision gets a
    Reward with its own idempotency key as soon as it is answered. Every `defer_every`-th
    decision is deferred (as an app that shows the offer later asks) and activated once
    answered, before its reward. Every call is kept."""

    def __init__(
        self,
        client: AsyncEmmaClient,
        rate: float,
        load: workload.Workload,
        reward_every: int = 2,
        defer_every: int = 4,
        deadline_s: float = DEFAULT_DEADLINE_S,
    ) -> None:
        self.client = client
        self.rate = rate
        self.reward_every = reward_every
        self.defer_every = defer_every
        self.deadline_s = deadline_s
        self.pool = [decide_options(r) for r in workload.decide_requests(load)]
        self.calls: list[Call] = []
        self._outcomes: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> list[Call]:
        """Issues Decide calls on schedule until `stop` is set, then waits for the last answers.

        Request i is due at start + i / rate and its latency counts from then, so a stalled
        generator or server cannot hide queueing (as in emma.loadgen.schedule).
        """
        loop = asyncio.get_running_loop()
        running: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.005
        index = 0
        while not stop.is_set():
            due = start + index / self.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = loop.create_task(self._one(index, due))
            running.add(task)
            task.add_done_callback(running.discard)
            index += 1
        await asyncio.gather(*running, return_exceptions=True)
        await asyncio.gather(*self._outcomes, return_exceptions=True)
        return self.calls

    async def _one(self, index: int, due: float) -> None:
        sent = time.perf_counter()
        result: object
        try:
            result = await self._decide(index)
        except Exception as error:  # a failed call is a result of the run
            result = error
        self._record(Sent(index, due, sent, time.perf_counter(), result))

    async def _decide(self, index: int) -> Decision:
        options = self.pool[index % len(self.pool)]
        return await self.client.decide(
            deadline=self.deadline_s, deferred_activation=self._deferred(index), **options
        )

    def _deferred(self, index: int) -> bool:
        return index % self.defer_every == 0

    def _record(self, sent: Sent) -> None:
        result = sent.result
        if isinstance(result, Decision):
            self.calls.append(
                Call(
                    DECIDE,
                    sent.due,
                    sent.sent,
                    sent.done,
                    degraded=result.degraded,
                    fallback=result.fallback,
                    event_id=result.event_id,
                    trace_id=result.trace_id,
                )
            )
            activate = self._deferred(sent.index)
            reward = sent.index % self.reward_every == 0
            if activate or reward:
                task = asyncio.get_running_loop().create_task(
                    self._outcomes_of(result.event_id, activate, reward)
                )
                self._outcomes.add(task)
                task.add_done_callback(self._outcomes.discard)
            return
        self.calls.append(Call(DECIDE, sent.due, sent.sent, sent.done, error=error_name(result)))

    async def _outcomes_of(self, event_id: str, activate: bool, reward: bool) -> None:
        if activate:
            await self._activate(event_id)
        if reward:
            await self._reward(event_id)

    async def _activate(self, event_id: str) -> None:
        started = time.perf_counter()
        error = ""
        try:
            await self.client.activate(event_id, deadline=self.deadline_s)
        except Exception as failure:  # a failed call is a result of the run
            error = error_name(failure)
        done = time.perf_counter()
        self.calls.append(Call(ACTIVATE, started, started, done, error, event_id=event_id))

    async def _reward(self, event_id: str) -> None:
        # A stable key: the SDK's retries and ours would count once.
        key = f"{event_id}:reward"
        started = time.perf_counter()
        error = ""
        try:
            await self.client.reward(
                event_id, 1.0, "purchase", idempotency_key=key, deadline=self.deadline_s
            )
        except Exception as failure:  # a failed call is a result of the run
            error = error_name(failure)
        done = time.perf_counter()
        self.calls.append(Call(REWARD, started, started, done, error, event_id=event_id, key=key))


def error_name(error: object) -> str:
    if isinstance(error, EmmaError):
        return error.code.name
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED_AT_END"
    return type(error).__name__
