"""A scripted DecisionService on a real gRPC server, for retry and error tests of the SDK."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2, decision_pb2_grpc


class ScriptedDecisionService(decision_pb2_grpc.DecisionServiceServicer):
    """Fails the first calls with the scripted status codes, then answers; counts attempts."""

    def __init__(self, failures: list[grpc.StatusCode] | None = None) -> None:
        self.failures = list(failures or [])
        self.attempts = 0
        self.requests: list[decision_pb2.DecideRequest] = []
        # The caller's address of each attempt ("ipv4:127.0.0.1:<port>"): one per connection.
        self.peers: list[str] = []
        # The metadata of each attempt.
        self.metadata: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def _attempt(self, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.attempts += 1
            self.peers.append(context.peer())
            self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            context.abort(failure, f"scripted {failure.name}")

    def Decide(
        self, request: decision_pb2.DecideRequest, context: grpc.ServicerContext
    ) -> decision_pb2.DecideResponse:
        self._attempt(context)
        self.requests.append(request)
        return decision_pb2.DecideResponse(
            event_id=f"ev-{self.attempts}",
            offer=decision_pb2.Offer(offer_id="emmentaler-20", title="20% auf Emmentaler"),
            channel=common_pb2.CHANNEL_RECEIPT,
            probability=1.0,
            trace_id="0" * 31 + "1",
        )

    def Activate(
        self, request: decision_pb2.ActivateRequest, context: grpc.ServicerContext
    ) -> decision_pb2.ActivateResponse:
        self._attempt(context)
        return decision_pb2.ActivateResponse(activated=request.event_id == "ev-1")

    def Reward(
        self, request: decision_pb2.RewardRequest, context: grpc.ServicerContext
    ) -> decision_pb2.RewardResponse:
        self._attempt(context)
        return decision_pb2.RewardResponse(accepted=request.event_id.startswith("ev-"))


def start_server(service: ScriptedDecisionService, port: int = 0) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(service, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


@contextlib.contextmanager
def serving(service: ScriptedDecisionService) -> Iterator[str]:
    server, port = start_server(service)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)
