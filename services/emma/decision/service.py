"""The DecisionService servicer: proto in, the pipeline, proto out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc

from emma.decision import convert
from emma.decision.feedback import Feedback
from emma.decision.pipeline import Decider
from emma.decision.queueing import queued_s
from emma.decision.v1 import decision_pb2, decision_pb2_grpc
from emma.runtime.errors import maps_domain_errors
from emma.runtime.privacy import pseudonymise
from emma.runtime.tracing import keep_visible

Context = grpc.aio.ServicerContext[Any, Any]


class DecisionServicer(decision_pb2_grpc.DecisionServiceServicer):
    def __init__(self, decider: Decider, feedback: Feedback) -> None:
        self.decider = decider
        self.feedback = feedback

    @maps_domain_errors
    async def Decide(
        self, request: decision_pb2.DecideRequest, context: Context
    ) -> decision_pb2.DecideResponse:
        decide_input = convert.decide_input(request, datetime.now(UTC))
        remaining = context.time_remaining()
        queued = queued_s(context.invocation_metadata(), remaining)
        try:
            decision = await self.decider.decide(decide_input, remaining, queued)
        except Exception as error:
            keep_visible("emma.decision.failed", {"error.type": type(error).__name__})
            raise
        if decision.degraded:
            # Sampled out or not, a degraded answer leaves a span under its trace id.
            keep_visible(
                "emma.decision.degraded",
                {
                    "emma.event_id": decision.event_id,
                    "emma.customer": pseudonymise(decide_input.customer_value),
                    "emma.degraded": [part.value for part in decision.degraded],
                    "emma.fallback": decision.fallback,
                    "emma.offer_id": decision.offer.offer_id,
                },
            )
        return convert.decide_response(decision)

    @maps_domain_errors
    async def Activate(
        self, request: decision_pb2.ActivateRequest, context: Context
    ) -> decision_pb2.ActivateResponse:
        event_id = convert.event_id_of(request.event_id)
        time = convert.feedback_time(request)
        recorded = await self.feedback.activate(event_id, time)
        return decision_pb2.ActivateResponse(activated=recorded.accepted, held=recorded.held)

    @maps_domain_errors
    async def Reward(
        self, request: decision_pb2.RewardRequest, context: Context
    ) -> decision_pb2.RewardResponse:
        event_id = convert.event_id_of(request.event_id)
        value = convert.reward_value(request.value)
        time = convert.feedback_time(request)
        recorded = await self.feedback.reward(
            event_id, value, request.kind, time, request.idempotency_key
        )
        return decision_pb2.RewardResponse(accepted=recorded.accepted, held=recorded.held)
