"""AsyncProfileClient: the asyncio SDK for the wallet and purchases (the profile service)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from types import TracebackType

import grpc

from emma_client import events
from emma_client.base import DEFAULT_DEADLINE_S, ClientSettings, LeastBusy
from emma_client.channels import RetryPolicy, aio_channels, call_aio
from emma_client.errors import EmmaError
from emma_client.models import WalletOffer
from emma_client.protos.emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma_client.requests import BasketLine, CustomerLike


class AsyncProfileClient(ClientSettings):
    """Reads a customer's wallet and records redemptions and purchases; use it with `async with`.

    Takes the same settings as `AsyncEmmaClient`; the address is the profile service's.
    """

    def __init__(
        self,
        address: str = "127.0.0.1:50052",
        *,
        deadline: float = DEFAULT_DEADLINE_S,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 - frozen, safe to share
        credentials: grpc.ChannelCredentials | None = None,
        wait_for_ready: bool = False,
        token: str | None = None,
        connections: int = 1,
    ) -> None:
        super().__init__(address, deadline, wait_for_ready, token, connections)
        self._channels = aio_channels(address, retry, credentials, connections)
        self._stubs = LeastBusy(
            [profile_pb2_grpc.ProfileServiceStub(channel) for channel in self._channels]
        )

    async def wallet(
        self, customer: CustomerLike, *, deadline: float | None = None
    ) -> tuple[WalletOffer, ...]:
        """The offers the customer holds open; empty for an unknown customer."""
        try:
            response: profile_pb2.GetProfileResponse = await call_aio(
                self._stubs,
                "GetProfile",
                events.profile_request(customer),
                self._call_options(deadline),
            )
        except grpc.RpcError as error:
            raise EmmaError.from_rpc_error("GetProfile", error) from error
        return tuple(WalletOffer.from_proto(offer) for offer in response.profile.wallet)

    async def redeem(
        self,
        customer: CustomerLike,
        offer: events.HeldOffer,
        *,
        channel: str | int = "cashier_prompt",
        time: datetime | None = None,
        event_id: str | None = None,
        deadline: float | None = None,
    ) -> bool:
        """Redeems an offer the customer holds (closing it everywhere); False for a replay.

        Emma rewards the offer's decision itself: do not also call `reward` for it. Pass a
        stable `event_id` (e.g. receipt number and line) so your own retries count once.
        """
        request = events.redeem_request(customer, offer, channel, time, event_id)
        return await self._record(request, deadline)

    async def record_purchase(
        self,
        customer: CustomerLike,
        lines: Iterable[BasketLine],
        *,
        store_id: str = "",
        currency: str = "EUR",
        channel: str | int | None = None,
        time: datetime | None = None,
        event_id: str | None = None,
        deadline: float | None = None,
    ) -> bool:
        """Records a purchase for the customer's profile; False when `event_id` was seen."""
        request = events.purchase_request(
            customer,
            lines,
            store_id=store_id,
            currency=currency,
            channel=channel,
            time=time,
            event_id=event_id,
        )
        return await self._record(request, deadline)

    async def _record(
        self, request: profile_pb2.RecordEventsRequest, deadline: float | None
    ) -> bool:
        try:
            response: profile_pb2.RecordEventsResponse = await call_aio(
                self._stubs, "RecordEvents", request, self._call_options(deadline)
            )
        except grpc.RpcError as error:
            raise EmmaError.from_rpc_error("RecordEvents", error) from error
        return response.accepted == len(request.events)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)

    async def __aenter__(self) -> AsyncProfileClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
