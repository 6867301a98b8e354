"""Loads the demo customers into a running profile service through its public RPCs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import grpc

from emma.demo import CUSTOMERS_PATH
from emma.demo.customers import (
    DemoCustomer,
    consent_request,
    events,
    identifier_refs,
    load_demo_data,
    preferences_request,
)
from emma.profile.v1 import profile_pb2, profile_pb2_grpc

CALL_TIMEOUT_S = 10.0


@dataclasses.dataclass
class LoadSummary:
    customers: int = 0
    events_accepted: int = 0
    events_duplicate: int = 0
    identifiers_linked: int = 0


def load_customer(
    stub: profile_pb2_grpc.ProfileServiceStub,
    customer: DemoCustomer,
    now: datetime,
    summary: LoadSummary,
) -> None:
    """Events first (they create the profile), then consent, preferences and identifiers."""
    history = events(customer, now)
    if history:
        recorded = stub.RecordEvents(
            profile_pb2.RecordEventsRequest(events=history),
            timeout=CALL_TIMEOUT_S,
            wait_for_ready=True,
        )
        summary.events_accepted += recorded.accepted
        summary.events_duplicate += recorded.duplicates
    if customer.consent:
        stub.UpdateConsent(
            consent_request(customer, now), timeout=CALL_TIMEOUT_S, wait_for_ready=True
        )
    if customer.preferences:
        stub.UpdatePreferences(
            preferences_request(customer), timeout=CALL_TIMEOUT_S, wait_for_ready=True
        )
    for identifier in identifier_refs(customer):
        stub.LinkIdentity(
            profile_pb2.LinkIdentityRequest(customer=customer.ref, identifier=identifier),
            timeout=CALL_TIMEOUT_S,
            wait_for_ready=True,
        )
        summary.identifiers_linked += 1
    summary.customers += 1


def load_demo_customers(
    profile_address: str, path: Path = CUSTOMERS_PATH, now: datetime | None = None
) -> LoadSummary:
    """Loads every customer of `path`; customers without any data (new ones) are skipped."""
    data = load_demo_data(path)
    now = now or datetime.now(UTC)
    summary = LoadSummary()
    with grpc.insecure_channel(profile_address) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        for customer in data.customers:
            load_customer(stub, customer, now, summary)
    return summary
