"""GetProfile's answer read from the profile store: the profile service's and in-process reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opentelemetry import trace

from emma.profile import convert, validation
from emma.profile.config import ProfileConfig
from emma.profile.model import CustomerRef, Profile
from emma.profile.store import ProfileStore
from emma.profile.v1 import profile_pb2
from emma.profile.wallet import Entry, open_entries
from emma.runtime.privacy import pseudonymise
from emma.runtime.redis_client import connect_any_redis


def checked_customer(message: Any, field: str = "customer") -> CustomerRef:
    """The validated reference in `message.<field>`; an absent one fails like an empty one."""
    ref = convert.customer_ref(getattr(message, field), field)
    validation.validate_customer(ref, field)
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(f"emma.{field}", pseudonymise(ref.value))
    return ref


class ProfileReader:
    """Answers GetProfile from the store: the profile and, `with_wallet`, its open wallet
    offers, read by the same script call (the wallet shares the profile's hash tag).

    The profile service answers GetProfile with it; the decision service reads profiles
    with it in process, so both see exactly the same answer for the same stored state.
    Not `complete`, profiles leave out what no decision reads (codec.build_profile).
    """

    def __init__(
        self, store: ProfileStore, *, with_wallet: bool = True, complete: bool = True
    ) -> None:
        self._store = store
        self._with_wallet = with_wallet
        self._complete = complete

    @classmethod
    def connect(cls, config: ProfileConfig, *, complete: bool = True) -> ProfileReader:
        """A reader with its own client of the profile store named by `config.redis_url`."""
        return cls(ProfileStore(connect_any_redis(config.redis_url), config), complete=complete)

    async def close(self) -> None:
        await self._store.close()

    async def warm_up(self) -> None:
        await self._store.load_scripts()

    async def read(
        self, request: profile_pb2.GetProfileRequest, now: datetime
    ) -> tuple[Profile | None, list[Entry]]:
        """The profile at `now` and its open wallet entries, soonest to expire first (none
        without `with_wallet`); InvalidArgument names a malformed customer field."""
        ref = checked_customer(request)
        entries: list[Entry] = []
        if self._with_wallet:
            profile, held = await self._store.get_profile_and_wallet(
                ref, now, complete=self._complete
            )
            entries = open_entries(held, now)
        else:
            profile = await self._store.get_profile(ref, now)
        trace.get_current_span().set_attribute("emma.profile.found", profile is not None)
        return profile, entries

    async def get(
        self, request: profile_pb2.GetProfileRequest, now: datetime
    ) -> profile_pb2.GetProfileResponse:
        """GetProfile's answer at `now`: what `read` finds, as the message."""
        profile, entries = await self.read(request, now)
        if profile is None:
            return profile_pb2.GetProfileResponse(found=False)
        response = profile_pb2.GetProfileResponse(
            found=True, profile=convert.profile_proto(profile)
        )
        response.profile.wallet.extend(entry.proto() for entry in entries)
        return response
