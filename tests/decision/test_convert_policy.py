"""What the contact policy reads from the profile and the context responses."""

from __future__ import annotations

from datetime import UTC, datetime

from emma.context.v1 import context_pb2
from emma.decision.convert import customer_view, situation
from emma.decision.domain import QuietHours
from emma.profile.v1 import profile_pb2

from .helpers import request

NOW = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)


def profile(**fields: object) -> profile_pb2.GetProfileResponse:
    response = profile_pb2.GetProfileResponse(found=True)
    response.profile.customer_id = "c-anna"
    for name, value in fields.items():
        setattr(response.profile, name, value)
    return response


def test_quiet_hours_active_hours_and_dismissals_are_converted() -> None:
    response = profile()
    response.profile.preferences.quiet_hours.CopyFrom(
        profile_pb2.QuietHours(start_minute=22 * 60, end_minute=7 * 60, enabled=True)
    )
    response.profile.active_hours.extend(float(hour) for hour in range(24))
    dismissed = response.profile.offer_history.add(offer_id="gouda-2for1")
    dismissed.last_dismissed.FromDatetime(datetime(2026, 6, 14, 18, 0, tzinfo=UTC))
    response.profile.offer_history.add(offer_id="emmentaler-20").last_shown.FromDatetime(NOW)
    view = customer_view(response, NOW)
    assert view.customer_id == "c-anna"
    assert view.quiet_hours == QuietHours(22 * 60, 7 * 60)
    assert view.active_hours[23] == 23.0 and len(view.active_hours) == 24
    # Only dismissals matter to the cool-down; a merely shown offer is not in the map.
    assert view.last_dismissed == {"gouda-2for1": datetime(2026, 6, 14, 18, 0, tzinfo=UTC)}


def test_disabled_quiet_hours_and_partial_activity_are_ignored() -> None:
    response = profile()
    response.profile.preferences.quiet_hours.CopyFrom(
        profile_pb2.QuietHours(start_minute=22 * 60, end_minute=7 * 60, enabled=False)
    )
    response.profile.active_hours.extend([1.0, 2.0])
    view = customer_view(response, NOW)
    assert view.quiet_hours is None
    assert view.active_hours == ()


def test_country_region_and_zone_come_from_the_context() -> None:
    response = context_pb2.ResolveResponse()
    response.context.local_time = "2026-06-15T10:00:00+02:00"
    response.context.time_zone = "Europe/Berlin"
    response.context.country = "de"
    response.context.region = "by"
    where = situation(response, request())
    assert (where.country, where.region, where.time_zone) == ("DE", "BY", "Europe/Berlin")
