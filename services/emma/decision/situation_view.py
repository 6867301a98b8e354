"""A context resolved in process as the pipeline sees it, without building Resolve's messages."""

from __future__ import annotations

from datetime import UTC, datetime

from emma.context.convert import touchpoint_name
from emma.context.resolver import ContextRequest
from emma.context.service import Resolution
from emma.decision.convert import DAYPART_NAMES, SEASON_NAMES, TOUCHPOINT_PROTOS
from emma.decision.domain import DecideInput, Situation


def context_request(request: DecideInput) -> ContextRequest:
    """What the context service reads of convert.resolve_request(request)."""
    return ContextRequest(
        instant=request.request_time.astimezone(UTC),
        store_id=request.store_id,
        location=request.location,
        touchpoint=touchpoint_name(TOUCHPOINT_PROTOS[request.touchpoint]),
        device=request.device,
        basket=request.basket,
    )


def situation_of(found: Resolution, request: DecideInput) -> Situation:
    """What convert.situation makes of the Resolve answer `found` would give, field for
    field; the messages cost more to build and read than resolving the context
    (tests/decision/test_situation_view.py holds the two equal)."""
    context = found.context
    features: list[tuple[str, float | str]] = []
    for group in found.groups:
        for name, value in group.features:
            features.append((name, value if isinstance(value, str) else float(value)))
    store_id = context.store.store_id if context.store is not None else ""
    return Situation(
        resolved=True,
        # The answer's local time is to the second, with the offset as it was then.
        local_time=datetime.fromisoformat(context.local_time.isoformat(timespec="seconds")),
        daypart=context.daypart if context.daypart in DAYPART_NAMES else "",
        season=context.season if context.season in SEASON_NAMES else "",
        weekday=context.weekday,
        retail_seasons=frozenset(context.retail_seasons),
        store_id=store_id or request.store_id,
        country=context.country.upper(),
        region=context.region.upper(),
        time_zone=context.time_zone,
        features=tuple(features),
    )
