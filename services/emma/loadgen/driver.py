"""The client side: one target's calls over one reused channel, driven on the schedule."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emma.context.v1 import context_pb2_grpc
from emma.decision.queueing import CALL_TIMEOUT_HEADER
from emma.decision.v1 import decision_pb2, decision_pb2_grpc
from emma.loadgen import floor, workload
from emma.loadgen.recorder import OK, Outcome, Recorder
from emma.loadgen.schedule import Schedule, run_open_loop
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma_client.base import LeastBusy, worker_named, workers_announced
from emma_client.channels import answered

# Which service each target calls, for the address it needs.
TARGETS = {
    "decide": "decision",
    "decision.health": "decision",
    "profile.get": "profile",
    "profile.record": "profile",
    "context.resolve": "context",
    "floor": "floor",
}
DEGRADED_NAMES = {
    value: name.removeprefix("DEGRADED_PART_").lower()
    for name, value in decision_pb2.DegradedPart.items()
}
# Large enough for 10,000 streams in flight; gRPC's default would queue calls client-side.
CHANNEL_OPTIONS = [("grpc.max_concurrent_streams", 10_000)]
# Connections made anew, at most, to reach every worker of a port (reach_every_worker): a
# new connection reaches each of two workers one time in two, so 32 fail one time in 2**32.
REDIALS = 32
PROBE_TIMEOUT_S = 5.0

# One call: what came back, and the worker that answered (None: the server names none).
Call = Callable[[int], Awaitable[tuple[object, str | None]]]


def channel(address: str) -> grpc.aio.Channel:
    """One channel per target, reused for every call: a connection per call costs ~1.5 ms."""
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


def own_connection(address: str) -> grpc.aio.Channel:
    """A channel with a connection of its own: channels to one address share a connection
    unless told, and a server's worker processes (SO_REUSEPORT) are chosen per connection."""
    return grpc.aio.insecure_channel(
        address, options=[*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    )


def decide_call(chan: grpc.aio.Channel, load: workload.Workload, timeout_s: float) -> Call:
    stub = decision_pb2_grpc.DecisionServiceStub(chan)
    pool = workload.decide_requests(load)
    degraded = DEGRADED_NAMES
    # As the SDK does: the budget then counts from when the call left the generator.
    metadata = ((CALL_TIMEOUT_HEADER, f"{timeout_s * 1000:.0f}"),)

    async def call(index: int) -> tuple[Outcome, str | None]:
        response, worker = await answered(
            stub.Decide(pool[index % len(pool)], timeout=timeout_s, metadata=metadata)
        )
        outcome = Outcome(
            tuple(degraded.get(part, str(part)) for part in response.degraded),
            response.fallback,
            response.candidate_count,
        )
        return outcome, worker

    return call


def health_call(chan: grpc.aio.Channel, timeout_s: float) -> Call:
    """The decision service's health check: its gRPC server and worker processes as Decide
    meets them, with none of Decide's work behind them (nor a span or metric sample, which
    health checks do not get)."""
    stub = health_pb2_grpc.HealthStub(chan)
    request = health_pb2.HealthCheckRequest(
        service=decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name
    )

    async def call(index: int) -> tuple[Outcome, str | None]:
        _, worker = await answered(stub.Check(request, timeout=timeout_s))
        return OK, worker

    return call


def profile_get_call(chan: grpc.aio.Channel, load: workload.Workload, timeout_s: float) -> Call:
    stub = profile_pb2_grpc.ProfileServiceStub(chan)
    pool = workload.profile_requests(load)

    async def call(index: int) -> tuple[Outcome, str | None]:
        _, worker = await answered(stub.GetProfile(pool[index % len(pool)], timeout=timeout_s))
        return OK, worker

    return call


def profile_record_call(chan: grpc.aio.Channel, load: workload.Workload, timeout_s: float) -> Call:
    """One new purchase per call (a fresh event id, so none is a replay)."""
    stub = profile_pb2_grpc.ProfileServiceStub(chan)
    rng = random.Random(load.seed + 2)
    now = datetime.now(UTC)
    run = f"{load.prefix}-{now.timestamp():.0f}"
    pool = [workload.purchase(load, rng.randrange(load.customers), "", now, rng) for _ in range(64)]
    counter = itertools.count()

    async def call(index: int) -> tuple[Outcome, str | None]:
        event = pool[index % len(pool)]
        event.event_id = f"{run}-{next(counter)}"
        request = profile_pb2.RecordEventsRequest(events=[event])
        _, worker = await answered(stub.RecordEvents(request, timeout=timeout_s))
        return OK, worker

    return call


def resolve_call(chan: grpc.aio.Channel, load: workload.Workload, timeout_s: float) -> Call:
    stub = context_pb2_grpc.ContextServiceStub(chan)
    pool = workload.resolve_requests(load)

    async def call(index: int) -> tuple[Outcome, str | None]:
        _, worker = await answered(stub.Resolve(pool[index % len(pool)], timeout=timeout_s))
        return OK, worker

    return call


def floor_call(chan: grpc.aio.Channel, sizes: floor.Sizes, timeout_s: float) -> Call:
    method = chan.unary_unary(floor.METHOD, None, None)
    payload = b"x" * sizes.request

    async def call(index: int) -> tuple[Outcome, str | None]:
        _, worker = await answered(method(payload, timeout=timeout_s))
        return OK, worker

    return call


@dataclasses.dataclass(frozen=True)
class Phase:
    """One target at one rate: where, what, how long."""

    target: str
    address: str
    schedule: Schedule
    timeout_s: float = 1.0
    # Callers' connections, each call to the worker with the fewest in flight (as the
    # SDK's): many callers spread over a server's workers.
    connections: int = 1


async def worker_reached(chan: grpc.aio.Channel) -> tuple[str | None, int | None]:
    """The worker a connection reaches and how many share its port, as a health check's
    trailing metadata says; (None, None) from a server that names none (the floor's)."""
    call = health_pb2_grpc.HealthStub(chan).Check(
        health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT_S
    )
    # A refused check names its worker all the same; an unanswered one, none.
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call
    metadata = await call.trailing_metadata()
    return worker_named(metadata), workers_announced(metadata)


async def reach_every_worker(address: str, channels: list[grpc.aio.Channel]) -> int:
    """Replaces connections, in place, until they reach as many of the server's workers as
    it announces (or as there are connections); returns how many were replaced.

    The kernel deals each new connection to one worker of a port at random: eight reach
    only one of two workers one time in 128 (four, one time in eight), and the other
    worker would idle for the whole run whatever the calls in flight say. A connection to
    the worker that has the most is closed and dialled anew, at most REDIALS times. A
    server that names no worker (the floor's) keeps its connections as they are.
    """
    reached = [await worker_reached(chan) for chan in channels]
    announced = max((count for _, count in reached if count is not None), default=None)
    if announced is None:
        return 0
    wanted = min(announced, len(channels))
    for redial in range(REDIALS):
        names = [name for name, _ in reached if name is not None]
        if len(set(names)) >= wanted:
            return redial
        crowded, _ = collections.Counter(names).most_common(1)[0]
        index = max(i for i, (name, _) in enumerate(reached) if name == crowded)
        await channels[index].close(None)
        channels[index] = own_connection(address)
        await channels[index].channel_ready()
        reached[index] = await worker_reached(channels[index])
    return REDIALS


async def run_phase(
    phase: Phase,
    load: workload.Workload,
    sizes: floor.Sizes = floor.DEFAULT_SIZES,
) -> Recorder:
    """Drives one target open-loop over its connections; returns what was recorded."""
    channels = [own_connection(phase.address) for _ in range(phase.connections)]
    try:
        for chan in channels:
            await chan.channel_ready()
        await reach_every_worker(phase.address, channels)
        builders: dict[str, Callable[[grpc.aio.Channel], Call]] = {
            "decide": lambda chan: decide_call(chan, load, phase.timeout_s),
            "decision.health": lambda chan: health_call(chan, phase.timeout_s),
            "profile.get": lambda chan: profile_get_call(chan, load, phase.timeout_s),
            "profile.record": lambda chan: profile_record_call(chan, load, phase.timeout_s),
            "context.resolve": lambda chan: resolve_call(chan, load, phase.timeout_s),
            "floor": lambda chan: floor_call(chan, sizes, phase.timeout_s),
        }
        # As the SDK does: each call to the worker with the fewest in flight.
        calls = LeastBusy([builders[phase.target](chan) for chan in channels])

        async def call(index: int) -> object:
            with calls.use() as slot:
                outcome, worker = await slot.item(index)
                slot.answered_by(worker)
            return outcome

        recorder = Recorder()
        recorder.measuring = phase.schedule.measured
        recorder.start = await run_open_loop(phase.schedule, call, recorder.record)
        return recorder
    finally:
        for chan in channels:
            await chan.close(None)


async def measure_sizes(addresses: dict[str, str], load: workload.Workload) -> floor.Sizes:
    """Serialized sizes of one real Decide and of the profile and context calls it makes;
    the defaults for the services whose address is not known."""
    sizes: dict[str, int] = {}
    decide = workload.decide_requests(load)[0]
    sizes["request"] = decide.ByteSize()
    if "decision" in addresses:
        async with channel(addresses["decision"]) as chan:
            stub = decision_pb2_grpc.DecisionServiceStub(chan)
            sizes["response"] = (await stub.Decide(decide, timeout=5.0)).ByteSize()
    get = profile_pb2.GetProfileRequest(customer=decide.customer)
    sizes["profile_request"] = get.ByteSize()
    if "profile" in addresses:
        async with channel(addresses["profile"]) as chan:
            profile = profile_pb2_grpc.ProfileServiceStub(chan)
            sizes["profile_response"] = (await profile.GetProfile(get, timeout=5.0)).ByteSize()
    resolve = workload.resolve_requests(load)[0]
    sizes["context_request"] = resolve.ByteSize()
    if "context" in addresses:
        async with channel(addresses["context"]) as chan:
            context = context_pb2_grpc.ContextServiceStub(chan)
            sizes["context_response"] = (await context.Resolve(resolve, timeout=5.0)).ByteSize()
    return dataclasses.replace(floor.Sizes(), **sizes)
