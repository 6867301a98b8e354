"""A minimal context computed locally when the context service is late or down."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from emma.decision.domain import DecideInput, Situation

# Same start hours as the context service's defaults (EMMA_DAYPARTS), so a degraded decision
# sees the daypart the healthy path would have seen.
_DAYPART_STARTS = ((5, "morning"), (11, "lunch"), (14, "afternoon"), (17, "evening"), (22, "night"))
_NORTHERN_SEASONS = {
    12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
    6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn",
}  # fmt: skip
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FLIPPED = {"spring": "autumn", "summer": "winter", "autumn": "spring", "winter": "summer"}


def daypart_at(hour: int) -> str:
    current = _DAYPART_STARTS[-1][1]  # before the first start it is still last night
    for start, name in _DAYPART_STARTS:
        if hour < start:
            break
        current = name
    return current


def fallback_situation(request: DecideInput, time_zone: str) -> Situation:
    """Daypart, meteorological season and weekday from the request time in the default zone.

    Retail seasons and holidays stay unknown, so seasonal offers drop out rather than
    being shown at the wrong time.
    """
    local = request.request_time.astimezone(ZoneInfo(time_zone))
    season = _NORTHERN_SEASONS[local.month]
    if request.location is not None and request.location[0] < 0:
        season = _FLIPPED[season]
    daypart = daypart_at(local.hour)
    weekday = local.isoweekday()
    # The context service's feature names (emma.context.features), for the facts known here.
    features: tuple[tuple[str, float | str], ...] = (
        ("daypart", daypart),
        ("weekday", _WEEKDAYS[weekday - 1]),
        ("season", season),
        ("touchpoint", request.touchpoint.value),
        ("hour", float(local.hour)),
        ("is_weekend", 1.0 if weekday >= 6 else 0.0),
    )
    return Situation(
        resolved=False,
        local_time=local,
        daypart=daypart,
        season=season,
        weekday=weekday,
        store_id=request.store_id,
        features=features,
    )
