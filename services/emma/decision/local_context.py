"""A minimal context computed locally when the context service is late or down."""

from __future__ import annotations

from emma.context import calendar, clock
from emma.decision.domain import DecideInput, Situation

# The context service's default dayparts and its own pure functions, so a degraded decision
# sees the daypart and season the healthy path would have seen.
_DAYPARTS = clock.parse_dayparts(clock.DEFAULT_DAYPARTS)


def fallback_situation(request: DecideInput, time_zone: str) -> Situation:
    """Daypart, meteorological season and weekday from the request time in the default zone.

    Retail seasons and holidays stay unknown, so seasonal offers drop out rather than
    being shown at the wrong time.
    """
    local = clock.local_time(request.request_time, time_zone)
    southern = request.location is not None and request.location[0] < 0
    season = calendar.season(local.date(), southern_hemisphere=southern)
    daypart = _DAYPARTS.at(local.hour)
    weekday = local.isoweekday()
    # The context service's feature names (emma.context.features), for the facts known here.
    features: tuple[tuple[str, float | str], ...] = (
        ("daypart", daypart),
        ("weekday", clock.weekday_name(local)),
        ("season", season),
        ("touchpoint", request.touchpoint.value),
        ("hour", float(local.hour)),
        ("is_weekend", 1.0 if clock.is_weekend(local) else 0.0),
    )
    return Situation(
        resolved=False,
        local_time=local,
        daypart=daypart,
        season=season,
        weekday=weekday,
        store_id=request.store_id,
        time_zone=time_zone,
        features=features,
    )
