"""The DecisionService servicer: proto in, the pipeline, proto out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc

from emma.decision import convert
from emma.decision.feedback import Feedback
from emma.decision.pipeline import Decider
from emma.decision.v1 import decision_pb2, decision_pb2_grpc
from emma.runtime.errors import maps_domain_errors

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
        decision = await self.decider.decide(decide_input, context.time_remaining())
        return convert.decide_response(decision)

    @maps_domain_errors
    async def Activate(
        self, request: decision_pb2.ActivateRequest, context: Context
    ) -> decision_pb2.ActivateResponse:
        event_id = convert.event_id_of(request.event_id)
        time = (
            request.time.ToDatetime(tzinfo=UTC) if request.HasField("time") else datetime.now(UTC)
        )
        activated = await self.feedback.activate(event_id, time)
        return decision_pb2.ActivateResponse(activated=activated)

    @maps_domain_errors
    async def Reward(
        self, request: decision_pb2.RewardRequest, context: Context
    ) -> decision_pb2.RewardResponse:
        event_id = convert.event_id_of(request.event_id)
        value = convert.reward_value(request.value)
        time = (
            request.time.ToDatetime(tzinfo=UTC) if request.HasField("time") else datetime.now(UTC)
        )
        accepted = await self.feedback.reward(
            event_id, value, request.kind, time, request.idempotency_key
        )
        return decision_pb2.RewardResponse(accepted=accepted)
