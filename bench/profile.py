"""Profile service benchmark: RecordEvents throughput, GetProfile latency, memory per profile.

    .venv/bin/python -m bench.profile [--events 60000] [--streams 8] [--workers 2]
                                      [--shoppers 5000] [--reads 2000] [--profiles 100]
                                      [--json] [--seed 1]

Starts a private redis-server and the profile service as `emma serve profile` builds it
(EMMA_PROFILE_WORKERS processes on one port under emma.runtime.workers' supervisor, real
gRPC, its event loop, tracing configured, the profile-events outbox and the wallet on),
each worker with an echo method on the same server, then measures:

- RecordEvents throughput with batches of 100 events sent by several concurrent
  callers, a connection each, for two batch shapes: 10 shoppers with 10 events each (a
  feed that batches sessions) and 100 shoppers with one event each (the worst case: one
  script call per event). Synthetic shoppers buy mostly from a personal repertoire at
  their usual hours, browse, answer offers and now and then call support; event times
  spread over four months and arrive out of order. The reference: the same batches'
  bytes echoed by the same servers and callers (what gRPC alone carries right now).
- GetProfile p50/p99 by customer id over gRPC, interleaved with a raw HGETALL of the
  same customers' record hash from this process (redis-py with hiredis) and a trivial
  gRPC echo on the same server (what any call costs on this machine).
- Redis memory per profile after 50 events: MEMORY USAGE summed over each customer's
  keys, split into the profile itself and the replay window's event-id set.

Goals: >= 20,000 events/s (10 shoppers per batch); <= 1 KiB per profile.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import multiprocessing
import os
import random
import signal
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import redis.asyncio as aioredis
from google.protobuf.timestamp_pb2 import Timestamp

from bench.echo_server import ECHO_SERVICE
from emma.common.v1 import common_pb2
from emma.profile.config import ProfileConfig
from emma.profile.server import build_server
from emma.profile.v1 import profile_pb2 as pb
from emma.profile.v1 import profile_pb2_grpc
from emma.runtime import eventloop
from emma.runtime.config import load_config
from emma.runtime.redis_server import RedisServer
from emma.runtime.tracing import configure_tracing
from emma.runtime.workers import Supervisor, reserve_port

THROUGHPUT_GOAL = 20_000.0
MEMORY_GOAL_BYTES = 1024
BATCH = 100
EVENTS_PER_PROFILE = 50
ECHO_METHOD = f"/{ECHO_SERVICE}/Ping"
CATEGORIES = [f"cat-{i:02d}" for i in range(40)]
# EAN-13-like product ids, each in one category.
PRODUCTS = [(str(4_006_381_000_000 + i * 7_919), CATEGORIES[i % 40]) for i in range(2_000)]
OFFERS = [f"offer-{i}" for i in range(8)]
STORES = [f"store-{i:03d}" for i in range(200)]
RESPONSES = (
    pb.OFFER_RESPONSE_KIND_SHOWN,
    pb.OFFER_RESPONSE_KIND_SHOWN,
    pb.OFFER_RESPONSE_KIND_CLICKED,
    pb.OFFER_RESPONSE_KIND_REDEEMED,
    pb.OFFER_RESPONSE_KIND_DISMISSED,
)
CHANNELS = (common_pb2.CHANNEL_PUSH, common_pb2.CHANNEL_EMAIL, common_pb2.CHANNEL_IN_APP)


@dataclasses.dataclass(frozen=True)
class Shopper:
    customer_id: str
    repertoire: tuple[tuple[str, str], ...]
    hours: tuple[int, ...]
    home_store: str


def shoppers(prefix: str, count: int, rng: random.Random) -> list[Shopper]:
    return [
        Shopper(
            f"{prefix}{index:07d}",
            tuple(rng.sample(PRODUCTS, 12)),
            tuple(rng.sample(range(6, 21), 3)),
            rng.choice(STORES),
        )
        for index in range(count)
    ]


def _stamp(time_: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(time_)
    return stamp


class EventMaker:
    """Plausible events of one shopper; every event id is new."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.serial = 0

    def _product(self, shopper: Shopper) -> tuple[str, str]:
        rng = self.rng
        return rng.choice(shopper.repertoire) if rng.random() < 0.8 else rng.choice(PRODUCTS)

    def event(self, shopper: Shopper) -> pb.Event:
        rng = self.rng
        self.serial += 1
        day = self.now - timedelta(days=rng.uniform(1, 120))
        when = day.replace(hour=rng.choice(shopper.hours), minute=rng.randrange(60))
        message = pb.Event(
            event_id=f"ev-{self.serial}-{rng.getrandbits(32):08x}",
            customer=common_pb2.CustomerRef(
                kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value=shopper.customer_id
            ),
            time=_stamp(when),
        )
        roll = rng.random()
        if roll < 0.6:
            lines = [self._product(shopper) for _ in range(rng.randint(1, 4))]
            store = shopper.home_store if rng.random() < 0.9 else rng.choice(STORES)
            message.purchase.CopyFrom(
                pb.Purchase(
                    items=[
                        common_pb2.BasketItem(product_id=p, category=c, quantity=1, amount=2.49)
                        for p, c in lines
                    ],
                    currency="EUR",
                    store_id=store,
                    channel=common_pb2.CHANNEL_RECEIPT,
                )
            )
        elif roll < 0.9:
            product, category = self._product(shopper)
            message.interaction.CopyFrom(
                pb.Interaction(
                    kind=pb.INTERACTION_KIND_VIEW,
                    product_id=product,
                    category=category,
                    channel=common_pb2.CHANNEL_IN_APP,
                )
            )
        elif roll < 0.98:
            message.offer_response.CopyFrom(
                pb.OfferResponse(
                    kind=rng.choice(RESPONSES),
                    offer_id=rng.choice(OFFERS),
                    channel=rng.choice(CHANNELS),
                )
            )
        else:
            message.support_contact.CopyFrom(
                pb.SupportContact(
                    sentiment=round(rng.uniform(-1, 1), 2),
                    topic="delivery",
                    channel=common_pb2.CHANNEL_EMAIL,
                )
            )
        return message


def batches(
    maker: EventMaker, pool: Sequence[Shopper], total: int, per_batch: int
) -> list[pb.RecordEventsRequest]:
    """`total` events in batches of BATCH, each from `per_batch` shoppers of the pool."""
    each = BATCH // per_batch
    out = []
    for _ in range(total // BATCH):
        events = [
            maker.event(shopper)
            for shopper in maker.rng.sample(list(pool), per_batch)
            for _ in range(each)
        ]
        maker.rng.shuffle(events)
        out.append(pb.RecordEventsRequest(events=events))
    return out


# --- the server processes -----------------------------------------------------------------


async def _echo(request: bytes, context: object) -> bytes:
    return request


def _serve_worker(redis_url: str, port: int, workers: int, ready: Any, index: int) -> int:
    """One worker of the profile service as `emma serve profile` builds it (its event loop,
    tracing configured), plus an echo method on the same server; serves until SIGTERM."""
    configure_tracing("emma-profile")
    environ = {
        "EMMA_REDIS_URL": redis_url,
        "EMMA_PROFILE_PORT": str(port),
        "EMMA_PROFILE_WORKERS": str(workers),
    }
    config = load_config(ProfileConfig, [], environ)

    async def run() -> None:
        server, _ = build_server(config)
        # The echo shares the server, its event loop and interceptors: the difference between
        # a profile method and the echo is the method's own work.
        echo = grpc.method_handlers_generic_handler(
            ECHO_SERVICE, {"Ping": grpc.unary_unary_rpc_method_handler(_echo)}
        )
        server.grpc_server.add_generic_rpc_handlers((echo,))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await server.start()
        ready.put(index)
        await stop.wait()
        await server.stop(1.0)

    eventloop.run(run(), eventloop.loop_name())
    return 0


class Service:
    """The profile service in `workers` processes on one port, supervised as in production."""

    def __init__(self, redis_url: str, workers: int) -> None:
        self.port = reserve_port("127.0.0.1")
        self._ready = multiprocessing.get_context("spawn").Queue()
        target = functools.partial(_serve_worker, redis_url, self.port, workers, self._ready)
        self._supervisor = Supervisor(workers, target, name="bench-profile")
        self._thread = threading.Thread(target=self._supervisor.supervise, daemon=True)
        self.workers = workers

    def __enter__(self) -> Service:
        self._supervisor.start()
        self._thread.start()
        try:
            for _ in range(self.workers):
                self._ready.get(timeout=120)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._supervisor.stop(timeout_s=30)
        self._thread.join(30)


# --- measurements -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Throughput:
    workload: str
    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def connections(port: int, count: int) -> list[grpc.aio.Channel]:
    """`count` channels with a TCP connection each (grpc would otherwise share one), as
    separate clients have: the kernel spreads connections, not calls, over the workers."""
    return [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(count)
    ]


async def record(
    channels: list[grpc.aio.Channel], requests: list[pb.RecordEventsRequest], workload: str
) -> Throughput:
    """Sends the batches with one concurrent caller per channel; checks every event was
    applied."""
    queue = iter(requests)
    accepted = 0

    async def caller(channel: grpc.aio.Channel) -> None:
        nonlocal accepted
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        for request in queue:
            reply = await stub.RecordEvents(request, timeout=60)
            accepted += reply.accepted

    started = time.perf_counter()
    await asyncio.gather(*(caller(channel) for channel in channels))
    seconds = time.perf_counter() - started
    events = sum(len(request.events) for request in requests)
    if accepted != events:
        raise RuntimeError(f"{events - accepted} of {events} events were not applied")
    return Throughput(workload, events, seconds)


async def echo(
    channels: list[grpc.aio.Channel], requests: list[pb.RecordEventsRequest]
) -> Throughput:
    """The reference: the same batches' bytes echoed by the same servers, same callers."""
    payloads = iter([request.SerializeToString() for request in requests])

    async def caller(channel: grpc.aio.Channel) -> None:
        ping = channel.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None)
        for payload in payloads:
            await ping(payload, timeout=60)

    started = time.perf_counter()
    await asyncio.gather(*(caller(channel) for channel in channels))
    seconds = time.perf_counter() - started
    events = sum(len(request.events) for request in requests)
    return Throughput("reference: gRPC echo of the batches", events, seconds)


@dataclasses.dataclass(frozen=True)
class Latency:
    name: str
    calls: int
    p50_ms: float
    p99_ms: float

    @staticmethod
    def of(name: str, samples_ns: list[int]) -> Latency:
        ordered = sorted(samples_ns)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))]
        return Latency(name, len(ordered), statistics.median(ordered) / 1e6, p99 / 1e6)


async def latencies(
    channel: grpc.aio.Channel,
    client: aioredis.Redis,
    pool: Sequence[Shopper],
    calls: int,
    rng: random.Random,
) -> list[Latency]:
    """GetProfile by customer id, a raw HGETALL of the record and a gRPC echo, interleaved."""
    stub = profile_pb2_grpc.ProfileServiceStub(channel)
    ping = channel.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None)
    grpc_ns: list[int] = []
    raw_ns: list[int] = []
    echo_ns: list[int] = []
    clock = time.perf_counter_ns
    for index in range(-200, calls):  # the first 200 rounds warm up
        shopper = rng.choice(pool)
        ref = common_pb2.CustomerRef(
            kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value=shopper.customer_id
        )
        started = clock()
        reply = await stub.GetProfile(pb.GetProfileRequest(customer=ref), timeout=5)
        middle = clock()
        await client.hgetall("{emma:c:" + shopper.customer_id + "}")
        ended = clock()
        await ping(b"ping", timeout=5)
        pinged = clock()
        if not reply.found:
            raise RuntimeError(f"no profile for {shopper.customer_id}")
        if index >= 0:
            grpc_ns.append(middle - started)
            raw_ns.append(ended - middle)
            echo_ns.append(pinged - ended)
    return [
        Latency.of("GetProfile over gRPC", grpc_ns),
        Latency.of("HGETALL of the record (redis-py)", raw_ns),
        Latency.of("gRPC echo, same server (baseline)", echo_ns),
    ]


@dataclasses.dataclass(frozen=True)
class Memory:
    profiles: int
    profile_mean_b: float
    profile_max_b: int
    event_ids_mean_b: float
    fields_mean: float


async def memory(stub: Any, client: aioredis.Redis, maker: EventMaker, count: int) -> Memory:
    """Records exactly 50 events for `count` new shoppers, then measures their keys."""
    pool = shoppers("m", count, maker.rng)
    for shopper in pool:
        events = [maker.event(shopper) for _ in range(EVENTS_PER_PROFILE)]
        await stub.RecordEvents(pb.RecordEventsRequest(events=events), timeout=60)
    profile_sizes, id_sizes, fields = [], [], []
    for shopper in pool:
        tag = "{emma:c:" + shopper.customer_id + "}"
        durable = event_ids = 0
        async for key in client.scan_iter(match=tag.replace("{", "[{]") + "*", count=1000):
            size = int(await client.memory_usage(key, samples=0) or 0)
            if key.startswith(tag + ":e"):
                event_ids += size
            else:
                durable += size
        profile_sizes.append(durable)
        id_sizes.append(event_ids)
        fields.append(int(await client.hlen(tag)))
    return Memory(
        count,
        statistics.mean(profile_sizes),
        max(profile_sizes),
        statistics.mean(id_sizes),
        statistics.mean(fields),
    )


async def measure(port: int, client: aioredis.Redis, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    maker = EventMaker(rng, datetime.now(UTC))
    pool = shoppers("c", args.shoppers, rng)
    per_shape = {
        "10 shoppers x 10 events per batch": batches(maker, pool, args.events, 10),
        "100 shoppers x 1 event per batch": batches(maker, pool, args.events, 100),
    }
    warm = batches(maker, shoppers("w", 200, rng), 20 * BATCH, 10)
    callers = connections(port, args.streams)
    try:
        await record(callers, warm, "warm-up")
        throughput = [
            await record(callers, requests, shape) for shape, requests in per_shape.items()
        ]
        first = next(iter(per_shape.values()))
        throughput.append(await echo(callers, first))
    finally:
        for caller in callers:
            await caller.close(None)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        written = {
            e.customer.value
            for r in per_shape["10 shoppers x 10 events per batch"]
            for e in r.events
        }
        readable = [shopper for shopper in pool if shopper.customer_id in written]
        reads = await latencies(channel, client, readable, args.reads, rng)
        sizes = await memory(stub, client, maker, args.profiles)
    return {"throughput": throughput, "latency": reads, "memory": sizes}


def run(args: argparse.Namespace) -> dict[str, Any]:
    load = os.getloadavg()[0]
    with RedisServer() as redis_server, Service(redis_server.url, args.workers) as service:

        async def go() -> dict[str, Any]:
            client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
            try:
                figures = await measure(service.port, client, args)
                figures["redis"] = (await client.info("server"))["redis_version"]
                return figures
            finally:
                await client.aclose()

        figures = asyncio.run(go())
    figures["machine"] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg()[0],
        "workers": args.workers,
    }
    return figures


def _report(figures: dict[str, Any], args: argparse.Namespace) -> str:
    machine = figures["machine"]
    lines = [
        f"profile service benchmark: redis {figures['redis']}, {machine['cpus']} CPUs, "
        f"python {machine['python']}, load average {machine['load_average_at_start']:.2f} "
        f"at start, {machine['load_average_at_end']:.2f} at end",
        "",
        f"RecordEvents, batches of {BATCH} events, {args.streams} concurrent callers "
        "(a connection each), "
        f"{args.workers} service worker process(es)",
        f"  {'workload':<36}{'events':>8}{'seconds':>9}{'events/s':>11}",
    ]
    for row in figures["throughput"]:
        lines.append(
            f"  {row.workload:<36}{row.events:>8}{row.seconds:>9.2f}{row.events_per_s:>11.0f}"
        )
    lines += [
        "",
        "GetProfile by customer id vs a raw HGETALL of the record, sequential, interleaved",
    ]
    lines.append(f"  {'call':<36}{'calls':>8}{'p50 ms':>9}{'p99 ms':>11}")
    for row in figures["latency"]:
        lines.append(f"  {row.name:<36}{row.calls:>8}{row.p50_ms:>9.3f}{row.p99_ms:>11.3f}")
    get, raw, ping = figures["latency"]
    lines.append(
        f"  GetProfile / HGETALL: p50 {get.p50_ms / raw.p50_ms:.1f}x, p99 "
        f"{get.p99_ms / raw.p99_ms:.1f}x; GetProfile - echo: p50 "
        f"{get.p50_ms - ping.p50_ms:.3f} ms"
    )
    mem: Memory = figures["memory"]
    lines += [
        "",
        f"Redis memory per profile after {EVENTS_PER_PROFILE} events "
        f"(MEMORY USAGE, {mem.profiles} profiles, {mem.fields_mean:.0f} record fields on average)",
        f"  profile keys               mean {mem.profile_mean_b:>6.0f} B   "
        f"max {mem.profile_max_b} B",
        f"  replay-window event ids    mean {mem.event_ids_mean_b:>6.0f} B   "
        "(8 B per id; gone when the window has passed)",
        "",
    ]
    feed = figures["throughput"][0].events_per_s
    lines.append(
        f"goals: >= {THROUGHPUT_GOAL:,.0f} events/s ({figures['throughput'][0].workload}): "
        f"{'met' if feed >= THROUGHPUT_GOAL else 'MISSED'} ({feed:,.0f}); "
        f"<= {MEMORY_GOAL_BYTES} B per profile: "
        f"{'met' if mem.profile_mean_b <= MEMORY_GOAL_BYTES else 'MISSED'} "
        f"({mem.profile_mean_b:.0f} B)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--events", type=int, default=60_000, help="events per batch shape")
    parser.add_argument(
        "--streams", type=int, default=8, help="concurrent callers, a connection each"
    )
    parser.add_argument("--shoppers", type=int, default=5_000, help="customers written to")
    parser.add_argument("--reads", type=int, default=2_000, help="GetProfile calls")
    parser.add_argument("--profiles", type=int, default=100, help="profiles measured for memory")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="service processes (EMMA_PROFILE_WORKERS)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args)
    if args.json:
        print(json.dumps(figures, indent=2, default=_as_json))
    else:
        print(_report(figures, args))
    return 0


def _as_json(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        row = dataclasses.asdict(value)
        if isinstance(value, Throughput):
            row["events_per_s"] = value.events_per_s
        return row
    raise TypeError(f"not JSON serialisable: {value!r}")


if __name__ == "__main__":
    raise SystemExit(main())
