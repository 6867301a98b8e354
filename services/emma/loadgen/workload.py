"""The requests a benchmark sends: synthetic customers at the demo stores, built once."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from emma.common.v1 import common_pb2
from emma.context.v1 import context_pb2
from emma.decision.v1 import decision_pb2
from emma.profile.v1 import profile_pb2, profile_pb2_grpc

# The demo stores (services/emma/demo/stores.yaml): id, latitude, longitude.
STORES = (
    ("berlin-mitte", 52.52437, 13.41053),
    ("muenchen-marienplatz", 48.13743, 11.57549),
    ("hamburg-altona", 53.55204, 9.93518),
    ("koeln-dom", 50.94130, 6.95828),
    ("leipzig-zentrum", 51.34040, 12.37472),
)
# Products of the demo catalog, so baskets and histories meet its offers.
PRODUCTS = (
    ("emmentaler", "cheese", 3.49),
    ("gouda", "cheese", 2.99),
    ("bergkaese", "cheese", 4.29),
    ("camembert", "cheese", 1.99),
    ("riesling", "wine", 7.99),
    ("sekt", "wine", 5.49),
    ("apfelschorle", "drinks", 0.89),
    ("erdbeeren", "fruit_veg", 2.49),
    ("spargel", "fruit_veg", 6.99),
    ("vollkornbrot", "bakery", 2.29),
    ("brezel", "bakery", 0.79),
    ("filter_coffee", "coffee", 5.99),
    ("weisswurst", "butcher", 4.49),
)
POOL = 512
SEED_BATCH = 200


@dataclasses.dataclass(frozen=True)
class Workload:
    """`customers` synthetic customers; a share `pos_share` of decisions come from tills
    (a store and a basket), the rest from the app (a location near a store)."""

    customers: int = 500
    prefix: str = "bench"
    pos_share: float = 0.8
    seed: int = 1

    def customer(self, index: int) -> common_pb2.CustomerRef:
        return common_pb2.CustomerRef(
            kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID,
            value=f"{self.prefix}-{index % self.customers}",
        )


DEFAULT = Workload()


def _basket(rng: random.Random) -> common_pb2.Basket:
    basket = common_pb2.Basket(currency="EUR")
    for product, category, price in rng.sample(PRODUCTS, rng.randint(1, 5)):
        quantity = float(rng.randint(1, 3))
        basket.items.add(
            product_id=product, category=category, quantity=quantity, amount=quantity * price
        )
    return basket


def decide_requests(workload: Workload, budget_ms: float = 0.0) -> list[decision_pb2.DecideRequest]:
    """A pool of Decide requests, cycled through by the driver (no request_time: "now")."""
    rng = random.Random(workload.seed)
    pool = []
    for index in range(POOL):
        store, latitude, longitude = rng.choice(STORES)
        request = decision_pb2.DecideRequest(customer=workload.customer(rng.randrange(1 << 30)))
        if rng.random() < workload.pos_share:
            request.touchpoint = common_pb2.TOUCHPOINT_POS
            request.store_id = store
            request.device = "till"
            request.basket.CopyFrom(_basket(rng))
        else:
            request.touchpoint = common_pb2.TOUCHPOINT_APP
            request.device = "ios" if index % 2 else "android"
            request.location.latitude = latitude + rng.uniform(-0.01, 0.01)
            request.location.longitude = longitude + rng.uniform(-0.01, 0.01)
        if budget_ms:
            request.budget.FromMilliseconds(round(budget_ms))
        pool.append(request)
    return pool


def profile_requests(workload: Workload) -> list[profile_pb2.GetProfileRequest]:
    return [
        profile_pb2.GetProfileRequest(customer=workload.customer(index)) for index in range(POOL)
    ]


def resolve_requests(workload: Workload) -> list[context_pb2.ResolveRequest]:
    """Resolve as the decision service asks it for the same Decide requests."""
    pool = []
    for decide in decide_requests(workload):
        request = context_pb2.ResolveRequest(
            store_id=decide.store_id, touchpoint=decide.touchpoint, device=decide.device
        )
        if decide.HasField("location"):
            request.location.CopyFrom(decide.location)
        if decide.HasField("basket"):
            request.basket.CopyFrom(decide.basket)
        pool.append(request)
    return pool


def _timestamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def purchase(
    workload: Workload, customer: int, event_id: str, when: datetime, rng: random.Random
) -> profile_pb2.Event:
    store = rng.choice(STORES)[0]
    basket = _basket(rng)
    return profile_pb2.Event(
        event_id=event_id,
        customer=workload.customer(customer),
        time=_timestamp(when),
        purchase=profile_pb2.Purchase(
            items=basket.items, currency="EUR", store_id=store, channel=common_pb2.CHANNEL_RECEIPT
        ),
    )


def history(workload: Workload, events_per_customer: int = 8) -> list[profile_pb2.Event]:
    """A few purchases per customer over the last two months."""
    rng = random.Random(workload.seed + 1)
    now = datetime.now(UTC)
    return [
        purchase(
            workload,
            customer,
            f"{workload.prefix}-seed-{customer}-{n}",
            now - timedelta(days=rng.uniform(0, 60)),
            rng,
        )
        for customer in range(workload.customers)
        for n in range(events_per_customer)
    ]


def consents(workload: Workload) -> list[profile_pb2.UpdateConsentRequest]:
    """Personalisation consent for two customers in three, marketing for one in three."""
    now = _timestamp(datetime.now(UTC))
    requests = []
    for customer in range(workload.customers):
        purposes: Sequence[int] = ()
        if customer % 3 == 1:
            purposes = (profile_pb2.PURPOSE_PERSONALISATION,)
        elif customer % 3 == 2:
            purposes = (profile_pb2.PURPOSE_PERSONALISATION, profile_pb2.PURPOSE_MARKETING)
        if purposes:
            request = profile_pb2.UpdateConsentRequest(customer=workload.customer(customer))
            for purpose in purposes:
                request.changes.add(
                    purpose=purpose,
                    status=profile_pb2.CONSENT_STATUS_GRANTED,
                    time=now,
                    source="bench",
                )
            requests.append(request)
    return requests


async def seed(channel: grpc.aio.Channel, workload: Workload) -> int:
    """Creates the customers through RecordEvents and UpdateConsent; returns events accepted."""
    stub = profile_pb2_grpc.ProfileServiceStub(channel)
    events = history(workload)
    accepted = 0
    for start in range(0, len(events), SEED_BATCH):
        batch = profile_pb2.RecordEventsRequest(events=events[start : start + SEED_BATCH])
        response = await stub.RecordEvents(batch, timeout=30.0, wait_for_ready=True)
        accepted += response.accepted
    for request in consents(workload):
        await stub.UpdateConsent(request, timeout=10.0, wait_for_ready=True)
    return accepted
