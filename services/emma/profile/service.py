"""The ProfileService servicer: proto in, validated domain objects to the store, proto out."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from opentelemetry import trace

from emma.profile import convert, intake, validation
from emma.profile.config import ProfileConfig
from emma.profile.model import CustomerRef, RecordResult
from emma.profile.outbox import Outbox
from emma.profile.reader import ProfileReader, checked_customer
from emma.profile.store import ProfileStore
from emma.profile.v1 import profile_pb2, profile_pb2_grpc
from emma.profile.wallet import Wallet, wallet_key
from emma.runtime.errors import InvalidArgument, maps_domain_errors
from emma.runtime.privacy import pseudonymise

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    """Implements every RPC of emma.profile.v1.ProfileService."""

    def __init__(
        self,
        store: ProfileStore,
        config: ProfileConfig,
        clock: Clock = utc_now,
        *,
        outbox: Outbox | None = None,
        wallet: Wallet | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        # The trigger engine's feed and the offer wallet (emma.profile.outbox, .wallet).
        self._outbox = outbox
        self._wallet = wallet
        self._reader = ProfileReader(store, with_wallet=wallet is not None)

    async def _canonical(self, ref: CustomerRef) -> str | None:
        profile = await self._store.get_profile(ref, self._clock())
        return profile.customer_id if profile is not None else None

    @maps_domain_errors
    async def GetProfile(
        self, request: profile_pb2.GetProfileRequest, context: Context
    ) -> profile_pb2.GetProfileResponse:
        return await self._reader.get(request, self._clock())

    @maps_domain_errors
    async def LinkIdentity(
        self, request: profile_pb2.LinkIdentityRequest, context: Context
    ) -> profile_pb2.LinkIdentityResponse:
        ref = checked_customer(request)
        identifier = checked_customer(request, "identifier")
        result = await self._store.link_identity(ref, identifier, self._clock())
        return profile_pb2.LinkIdentityResponse(
            customer_id=result.customer_id,
            merged=result.merged,
            merged_customer_id=result.merged_customer_id,
        )

    async def _record(self, messages: Any) -> RecordResult:
        now = self._clock()
        config = self._config
        checked = intake.read_batch(
            messages, now, config.max_batch_events, config.default_time_zone
        )
        recorded = await self._store.record_batch(checked, now)
        # Written: recorded.applied names, per profile, the places in `messages` of the
        # events it took (replays left out), for whatever follows a successful write.
        result = recorded.result
        if self._wallet is not None:
            await self._wallet.apply(messages, now, self._canonical)
        if self._outbox is not None:
            await self._outbox.publish(messages, result)
        span = trace.get_current_span()
        span.set_attribute("emma.events.accepted", result.accepted)
        span.set_attribute("emma.events.duplicates", result.duplicates)
        return result

    @maps_domain_errors
    async def RecordEvents(
        self, request: profile_pb2.RecordEventsRequest, context: Context
    ) -> profile_pb2.RecordEventsResponse:
        result = await self._record(request.events)
        return profile_pb2.RecordEventsResponse(
            accepted=result.accepted, duplicates=result.duplicates
        )

    @maps_domain_errors
    async def RecordEventStream(
        self,
        request_iterator: AsyncIterator[profile_pb2.RecordEventStreamRequest],
        context: Context,
    ) -> profile_pb2.RecordEventStreamResponse:
        # Each batch is all or nothing; batches before a rejected one stay applied, and
        # replaying the stream is safe because events are idempotent.
        total, batches = RecordResult(), 0
        async for request in request_iterator:
            try:
                total += await self._record(request.events)
            except InvalidArgument as error:
                raise InvalidArgument(f"batches[{batches}].{error.field}", error.problem) from None
            batches += 1
        return profile_pb2.RecordEventStreamResponse(
            accepted=total.accepted, duplicates=total.duplicates, batches=batches
        )

    @maps_domain_errors
    async def UpdatePreferences(
        self, request: profile_pb2.UpdatePreferencesRequest, context: Context
    ) -> profile_pb2.UpdatePreferencesResponse:
        ref = checked_customer(request)
        fields = convert.mask_fields(request.update_mask.paths)
        prefs = convert.preferences(request.preferences, "preferences")
        validation.validate_preferences(prefs, fields, "preferences")
        stored = await self._store.update_preferences(ref, prefs, fields, self._clock())
        return profile_pb2.UpdatePreferencesResponse(preferences=convert.preferences_proto(stored))

    @maps_domain_errors
    async def UpdateConsent(
        self, request: profile_pb2.UpdateConsentRequest, context: Context
    ) -> profile_pb2.UpdateConsentResponse:
        ref = checked_customer(request)
        now = self._clock()
        changes = convert.consent_changes(request.changes, now)
        validation.validate_consent_changes(changes, now)
        effective = await self._store.update_consent(ref, changes, now)
        return profile_pb2.UpdateConsentResponse(
            consents=[convert.consent_state_proto(state) for state in effective]
        )

    @maps_domain_errors
    async def ExportCustomer(
        self, request: profile_pb2.ExportCustomerRequest, context: Context
    ) -> profile_pb2.ExportCustomerResponse:
        ref = checked_customer(request)
        export = await self._store.export_customer(ref, self._clock())
        log.info(
            "customer exported",
            extra={"customer": pseudonymise(ref.value), "found": export is not None},
        )
        if export is None:
            return profile_pb2.ExportCustomerResponse(found=False)
        raw, profile = dict(export.raw), convert.profile_proto(export.profile)
        if self._wallet is not None:
            customer_id = export.profile.customer_id
            if held := await self._wallet.export(customer_id):
                raw[wallet_key(self._config.key_prefix, customer_id)] = dict(sorted(held.items()))
            profile.wallet.extend(await self._wallet.open_offers(customer_id, self._clock()))
        return profile_pb2.ExportCustomerResponse(
            found=True,
            profile=profile,
            consent_ledger=[convert.consent_change_proto(c) for c in export.consent_ledger],
            raw_json=_json(raw),
        )

    @maps_domain_errors
    async def EraseCustomer(
        self, request: profile_pb2.EraseCustomerRequest, context: Context
    ) -> profile_pb2.EraseCustomerResponse:
        ref = checked_customer(request)
        # The erase script deletes the wallet (same hash tag) and, with the outbox on, appends
        # the erasure for the trigger engine and the decision service's contact records.
        stream, maxlen = (
            (self._outbox.stream, self._outbox.maxlen) if self._outbox is not None else ("", 1)
        )
        result = await self._store.erase_customer(ref, self._clock(), stream, maxlen)
        # An audit trail of erasures, without the personal data that was erased.
        log.info(
            "customer erased",
            extra={
                "customer": pseudonymise(ref.value),
                "erased": result.erased,
                "identifiers_removed": result.identifiers_removed,
            },
        )
        return profile_pb2.EraseCustomerResponse(
            erased=result.erased, identifiers_removed=result.identifiers_removed
        )


def _json(raw: dict[str, object]) -> str:
    return json.dumps(raw, sort_keys=True, ensure_ascii=False)
