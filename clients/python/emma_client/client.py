"""EmmaClient: the synchronous SDK for app backends and tills."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Unpack

import grpc

from emma_client import requests
from emma_client.base import DEFAULT_DEADLINE_S, ClientSettings, LeastBusy
from emma_client.channels import RetryPolicy, call_sync, sync_channels
from emma_client.errors import EmmaError
from emma_client.models import Decision
from emma_client.protos.emma.decision.v1 import decision_pb2, decision_pb2_grpc


class EmmaClient(ClientSettings):
    """Decide, Activate and Reward against a decision service; use it as a context manager.

    `deadline` is the default per-call deadline in seconds; every method takes its own
    `deadline` too. UNAVAILABLE is retried by gRPC with backoff within the deadline.
    `wait_for_ready` makes calls wait (within their deadline) for a service that is
    still starting instead of failing fast. `credentials` turns on TLS (see
    `tls_credentials`); `token` is the caller's bearer token. `connections` opens that
    many connections: a service whose worker processes share one port
    (EMMA_DECISION_WORKERS) gives each connection to one worker, so a client with one
    connection keeps all its calls on one of them. With several, each call goes to the
    worker with the fewest calls in flight (every answer names its worker), over its
    least busy connection: the workers take turns however the connections fell.
    """

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        deadline: float = DEFAULT_DEADLINE_S,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 - frozen, safe to share
        credentials: grpc.ChannelCredentials | None = None,
        wait_for_ready: bool = False,
        token: str | None = None,
        connections: int = 1,
    ) -> None:
        super().__init__(address, deadline, wait_for_ready, token, connections)
        self._channels = sync_channels(address, retry, credentials, connections)
        self._stubs = LeastBusy(
            [decision_pb2_grpc.DecisionServiceStub(channel) for channel in self._channels]
        )

    def decide(
        self,
        customer: requests.CustomerLike | None = None,
        *,
        deadline: float | None = None,
        **options: Unpack[requests.DecideOptions],
    ) -> Decision:
        """Asks for one offer, channel and send time; see `DecideOptions` for the arguments."""
        request = requests.decide_request(customer, **options)
        try:
            response: decision_pb2.DecideResponse = call_sync(
                self._stubs, "Decide", request, self._call_options(deadline)
            )
        except grpc.RpcError as error:
            raise EmmaError.from_rpc_error("Decide", error) from error
        return Decision.from_proto(response)

    def activate(
        self, event_id: str, *, time: datetime | None = None, deadline: float | None = None
    ) -> bool:
        """Confirms a deferred decision was shown; False when it was already activated.
        True too when the service holds it in memory until its Redis answers again."""
        request = requests.activate_request(event_id, time)
        try:
            response: decision_pb2.ActivateResponse = call_sync(
                self._stubs, "Activate", request, self._call_options(deadline)
            )
        except grpc.RpcError as error:
            raise EmmaError.from_rpc_error("Activate", error) from error
        return response.activated

    def reward(
        self,
        event_id: str,
        value: float,
        kind: str = "",
        *,
        time: datetime | None = None,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> bool:
        """Reports an outcome; False when the event id is not (or no longer) known. True
        too when the service holds it in memory until its Redis answers again (every
        reward from this client has a key, so it is safe to hold).

        Retries of this call count once. Pass `idempotency_key` (e.g. the order id) to make
        your own retries of the same outcome count once too.
        """
        request = requests.reward_request(event_id, value, kind, time, idempotency_key)
        try:
            response: decision_pb2.RewardResponse = call_sync(
                self._stubs, "Reward", request, self._call_options(deadline)
            )
        except grpc.RpcError as error:
            raise EmmaError.from_rpc_error("Reward", error) from error
        return response.accepted

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> EmmaClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
