"""Decide, Activate and Reward in-process over gRPC, with a real Redis and dependencies down."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf.duration_pb2 import Duration
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from emma.common.v1 import common_pb2
from emma.decision.log_line import line_of
from emma.decision.queueing import CALL_TIMEOUT_HEADER
from emma.decision.v1 import decision_pb2

from .conftest import StartDecision, stream_entries

# A Monday in June, 10:00 in Berlin: morning and summer in the local fallback context.
JUNE_MORNING = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)
CONSENT_CHANNELS = {common_pb2.CHANNEL_PUSH, common_pb2.CHANNEL_EMAIL, common_pb2.CHANNEL_SMS}


def decide_request(**fields: object) -> decision_pb2.DecideRequest:
    values: dict[str, object] = {
        "customer": common_pb2.CustomerRef(
            kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-42"
        ),
        "touchpoint": common_pb2.TOUCHPOINT_APP,
        **fields,
    }
    request = decision_pb2.DecideRequest(**values)  # type: ignore[arg-type]
    if not request.HasField("request_time"):
        request.request_time.FromDatetime(JUNE_MORNING)
    return request


async def test_profile_down_decides_without_consent_bound_channels(
    start_decision: StartDecision,
) -> None:
    stub = await start_decision()
    for _ in range(10):
        response = await stub.Decide(decide_request())
        assert decision_pb2.DEGRADED_PART_PROFILE in response.degraded
        assert decision_pb2.DEGRADED_PART_CONTEXT in response.degraded
        assert response.channel not in CONSENT_CHANNELS
        assert response.channel == common_pb2.CHANNEL_IN_APP
        assert not response.fallback
        assert response.candidate_count > 0
        assert 0 < response.probability <= 1
        assert response.model_version == "cold"  # nothing published yet
        assert len(response.event_id) == 32
    codes = {reason.code for reason in response.reasons}
    assert {"chosen.model", "filtered.consent", "filtered.touchpoint"} <= codes
    # No personal data in the reasons.
    assert all("c-42" not in reason.detail for reason in response.reasons)


async def test_pos_gets_till_channels_and_seasonal_offers(start_decision: StartDecision) -> None:
    stub = await start_decision()
    seen = set()
    for _ in range(15):
        response = await stub.Decide(
            decide_request(touchpoint=common_pb2.TOUCHPOINT_POS, store_id="berlin-mitte")
        )
        assert response.channel in {
            common_pb2.CHANNEL_RECEIPT,
            common_pb2.CHANNEL_CASHIER_PROMPT,
            common_pb2.CHANNEL_STORE_SCREEN,
        }
        seen.add(response.offer.offer_id)
    # Morning in summer: no spargel (spring), no advent offers; the fallback is no candidate.
    assert seen.isdisjoint({"spargel-spring", "gluehwein-lebkuchen-advent", "loyalty-points"})


async def test_nothing_eligible_answers_the_fallback_without_a_fault(
    start_decision: StartDecision,
) -> None:
    stub = await start_decision()
    # Only SMS allowed, and without a profile SMS has no consent: nothing is eligible.
    response = await stub.Decide(decide_request(allowed_channels=[common_pb2.CHANNEL_SMS]))
    assert response.fallback
    assert response.offer.offer_id == "loyalty-points"
    assert decision_pb2.DEGRADED_PART_FALLBACK not in response.degraded
    assert response.channel == common_pb2.CHANNEL_UNSPECIFIED
    assert response.candidate_count == 0


async def test_a_spent_budget_still_answers_with_what_arrived(
    start_decision: StartDecision,
) -> None:
    stub = await start_decision()
    response = await stub.Decide(
        decide_request(touchpoint=common_pb2.TOUCHPOINT_POS, budget=Duration(nanos=1000))
    )
    assert response.offer.offer_id
    assert decision_pb2.DEGRADED_PART_PROFILE in response.degraded
    assert decision_pb2.DEGRADED_PART_CONTEXT in response.degraded


async def test_a_call_that_waited_its_budget_is_answered_the_fallback(
    start_decision: StartDecision, spans: InMemorySpanExporter
) -> None:
    stub = await start_decision()
    # The caller gave the call 5 s and 1 s is left: it waited 4 s before its handler ran.
    waited = await stub.Decide(
        decide_request(), timeout=1.0, metadata=((CALL_TIMEOUT_HEADER, "5000"),)
    )
    assert waited.fallback
    assert decision_pb2.DEGRADED_PART_FALLBACK in waited.degraded
    assert ("chosen.fallback", "queued") in {(r.code, r.detail) for r in waited.reasons}
    # All of it left: decided in full, and the span says how long the call waited.
    prompt = await stub.Decide(
        decide_request(), timeout=1.0, metadata=((CALL_TIMEOUT_HEADER, "1000"),)
    )
    assert not prompt.fallback
    queued = {
        str(span.attributes["emma.event_id"]): float(span.attributes["emma.queued_ms"])  # type: ignore[arg-type]
        for span in spans.get_finished_spans()
        if span.attributes and "emma.queued_ms" in span.attributes
    }
    assert queued[waited.event_id] > 3_900
    assert 0 <= queued[prompt.event_id] < 500


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        (
            {"customer": common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID)},
            "customer.value",
        ),
        ({"customer": common_pb2.CustomerRef(value="c-1")}, "customer.kind"),
        ({"budget": Duration(seconds=-1)}, "budget"),
        ({"touchpoint": common_pb2.TOUCHPOINT_UNSPECIFIED}, "touchpoint"),
        ({"allowed_channels": [common_pb2.CHANNEL_UNSPECIFIED]}, "allowed_channels[0]"),
        ({"location": common_pb2.GeoPoint(latitude=91, longitude=0)}, "location.latitude"),
    ],
)
async def test_invalid_requests_name_the_field(
    start_decision: StartDecision, request_fields: dict[str, object], field: str
) -> None:
    stub = await start_decision()
    request = decide_request()
    for name, value in request_fields.items():
        if isinstance(value, list):
            getattr(request, name).extend(value)
        elif name == "touchpoint":
            request.touchpoint = value  # type: ignore[assignment]
        else:
            getattr(request, name).CopyFrom(value)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Decide(request)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error.value.details()).startswith(f"{field}: ")


async def test_empty_customer_is_invalid_argument_naming_customer(
    start_decision: StartDecision,
) -> None:
    stub = await start_decision()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Decide(decision_pb2.DecideRequest(touchpoint=common_pb2.TOUCHPOINT_APP))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "customer.value: must not be empty"


async def test_decisions_are_logged_as_dsjson_on_the_stream(
    start_decision: StartDecision, redis_url: str
) -> None:
    stub = await start_decision()
    response = await stub.Decide(decide_request(request_id="r-1"))
    entries = await stream_entries(redis_url, "emma:decisions")
    assert len(entries) == 1
    fields = entries[0]
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert fields["event_id"] == response.event_id
        assert fields["offer_id"] == response.offer.offer_id
        assert fields["customer"].startswith("p-") and "c-42" not in json.dumps(fields)
        line = line_of(fields)
        assert line["EventId"] == response.event_id
        assert line["Timestamp"] == "2026-06-15T08:00:00.000Z"
        assert line["a"][0] == line["_label_Action"] == line["_labelIndex"] + 1
        assert line["p"][0] == pytest.approx(response.probability)
        assert sum(line["p"]) == pytest.approx(1.0)
        assert len(line["c"]["_multi"]) == response.candidate_count == len(line["a"])
        assert line["VWState"] == {"m": "cold"}
        assert await client.ttl(f"emma:decision:{response.event_id}") > 0
    finally:
        await client.aclose()


async def test_redis_down_buffers_the_decision_log_entry(
    start_decision: StartDecision, dead_addr: str
) -> None:
    stub = await start_decision(redis_url=f"redis://{dead_addr}/0")
    response = await stub.Decide(decide_request())
    # Kept in memory until Redis answers (tests/decision/test_log_buffer.py): not degraded.
    assert decision_pb2.DEGRADED_PART_DECISION_LOG not in response.degraded
    assert response.offer.offer_id


async def test_redis_down_without_a_log_buffer_degrades_the_decision_log(
    start_decision: StartDecision, dead_addr: str
) -> None:
    stub = await start_decision(redis_url=f"redis://{dead_addr}/0", log_buffer_entries=0)
    response = await stub.Decide(decide_request())
    assert decision_pb2.DEGRADED_PART_DECISION_LOG in response.degraded
    assert response.offer.offer_id


async def test_reward_for_unknown_event_is_not_accepted_but_recorded(
    start_decision: StartDecision, redis_url: str
) -> None:
    stub = await start_decision()
    response = await stub.Reward(decision_pb2.RewardRequest(event_id="f" * 32, value=1.0))
    assert response.accepted is False
    entries = await stream_entries(redis_url, "emma:rewards")
    assert line_of(entries[0])["EventId"] == "f" * 32


async def test_rewards_are_recorded_for_the_learner_and_the_replica_learns_nothing(
    start_decision: StartDecision, redis_url: str
) -> None:
    stub = await start_decision()
    first = await stub.Decide(decide_request())
    for _ in range(2):  # a retry: recorded again, the learner counts the key once
        reward = await stub.Reward(
            decision_pb2.RewardRequest(
                event_id=first.event_id, value=1.0, kind="redeem", idempotency_key="order-7"
            )
        )
        assert reward.accepted
    # Only the learner learns: the replica serves the model it has until one is published.
    assert (await stub.Decide(decide_request())).model_version == "cold"
    entries = await stream_entries(redis_url, "emma:rewards")
    assert [(e["event_id"], e["type"], e["key"]) for e in entries] == [
        (first.event_id, "reward", "order-7")
    ] * 2
    assert line_of(entries[0]) == {
        "EventId": first.event_id,
        "v": 1.0,
        "kind": "redeem",
        "Timestamp": line_of(entries[0])["Timestamp"],
        "key": "order-7",
    }


async def test_activations_are_recorded_on_every_call_and_answered_once(
    start_decision: StartDecision, redis_url: str
) -> None:
    stub = await start_decision()
    decision = await stub.Decide(decide_request(deferred_activation=True))
    first = await stub.Activate(decision_pb2.ActivateRequest(event_id=decision.event_id))
    again = await stub.Activate(decision_pb2.ActivateRequest(event_id=decision.event_id))
    assert (first.activated, again.activated) == (True, False)
    # A retry after a lost answer must not lose the activation: both are on the stream.
    entries = await stream_entries(redis_url, "emma:rewards")
    assert [e["type"] for e in entries] == ["activation", "activation"]


async def test_an_overlong_idempotency_key_is_invalid(start_decision: StartDecision) -> None:
    stub = await start_decision()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Reward(
            decision_pb2.RewardRequest(event_id="e", value=1.0, idempotency_key="k" * 257)
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error.value.details()).startswith("idempotency_key: ")


async def test_activate_unknown_event_is_not_found(start_decision: StartDecision) -> None:
    stub = await start_decision()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Activate(decision_pb2.ActivateRequest(event_id="nope"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert str(error.value.details()).startswith("event_id: ")


async def test_activation_is_found_by_another_replica(start_decision: StartDecision) -> None:
    one, other = await start_decision(), await start_decision()
    decision = await one.Decide(decide_request(deferred_activation=True))
    assert (
        await other.Activate(decision_pb2.ActivateRequest(event_id=decision.event_id))
    ).activated
    assert (
        await other.Reward(decision_pb2.RewardRequest(event_id=decision.event_id, value=1))
    ).accepted


@pytest.mark.parametrize(
    ("reward", "field"),
    [
        (decision_pb2.RewardRequest(event_id="", value=1.0), "event_id"),
        (decision_pb2.RewardRequest(event_id="e", value=float("nan")), "value"),
        (decision_pb2.RewardRequest(event_id="e", value=float("inf")), "value"),
    ],
)
async def test_invalid_rewards_name_the_field(
    start_decision: StartDecision, reward: decision_pb2.RewardRequest, field: str
) -> None:
    stub = await start_decision()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Reward(reward)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error.value.details()).startswith(f"{field}: ")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Activate(decision_pb2.ActivateRequest(event_id=""))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_decide_sets_span_attributes_without_personal_data(
    start_decision: StartDecision, spans: InMemorySpanExporter
) -> None:
    stub = await start_decision()
    response = await stub.Decide(decide_request())
    assert len(response.trace_id) == 32
    server_spans = [
        span
        for span in spans.get_finished_spans()
        if span.attributes and "emma.event_id" in span.attributes
    ]
    assert len(server_spans) == 1
    attributes = dict(server_spans[0].attributes or {})
    assert format(server_spans[0].context.trace_id, "032x") == response.trace_id
    assert attributes["emma.event_id"] == response.event_id
    assert attributes["emma.offer_id"] == response.offer.offer_id
    assert attributes["emma.channel"] == "in_app"
    assert attributes["emma.candidates"] == response.candidate_count
    assert 0 <= float(attributes["emma.loop_lag_ms"]) < 1_000  # type: ignore[arg-type]
    assert set(attributes["emma.degraded"]) == {"profile", "context"}  # type: ignore[arg-type]
    assert str(attributes["emma.customer"]).startswith("p-")
    every_value = [
        str(v) for span in spans.get_finished_spans() for v in (span.attributes or {}).values()
    ]
    assert not any("c-42" in value for value in every_value)
    names = {span.name for span in spans.get_finished_spans()}
    assert {"emma.decision.eligibility", "emma.decision.predict", "emma.decision.log"} <= names


async def test_feedback_with_redis_down_is_held_when_it_can_be_and_unavailable_otherwise(
    start_decision: StartDecision, dead_addr: str
) -> None:
    stub = await start_decision(redis_url=f"redis://{dead_addr}/0")
    # Recording either twice counts once: held in memory, answered at once.
    activated = await stub.Activate(decision_pb2.ActivateRequest(event_id="e"))
    assert (activated.activated, activated.held) == (True, True)
    keyed = await stub.Reward(
        decision_pb2.RewardRequest(event_id="e", value=1.0, idempotency_key="k")
    )
    assert (keyed.accepted, keyed.held) == (True, True)
    # A reward without a key could count twice: the caller decides.
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Reward(decision_pb2.RewardRequest(event_id="e", value=1.0))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    # Without a buffer nothing is held.
    unbuffered = await start_decision(redis_url=f"redis://{dead_addr}/0", outcome_buffer_entries=0)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await unbuffered.Activate(decision_pb2.ActivateRequest(event_id="e"))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
