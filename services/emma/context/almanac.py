"""What the calendar says about one local day at one place, computed once and cached."""

from __future__ import annotations

import dataclasses
import functools
from datetime import date

from emma.context import calendar
from emma.context.calendar import PUBLIC_ONLY, Holiday, HolidayCalendar
from emma.context.seasons import RetailCalendar, default_retail_calendar


@dataclasses.dataclass(frozen=True)
class DayFacts:
    season: str
    holiday: Holiday | None
    next_holiday: Holiday | None
    # Days from the day to next_holiday; 0 when there is none within the lookahead.
    days_to_next_holiday: int
    retail_seasons: tuple[str, ...]


class Almanac:
    """Holidays, retail seasons and the meteorological season of a day at a place.

    The answers depend only on (country, region, holiday categories, date, hemisphere),
    of which a service sees a few thousand a day, so they are cached rather than
    recomputed per request.
    """

    CACHE_SIZE = 16_384

    def __init__(
        self,
        holidays: HolidayCalendar | None = None,
        retail: RetailCalendar | None = None,
    ) -> None:
        self.holidays = holidays or HolidayCalendar()
        self.retail = retail or default_retail_calendar()
        self.facts = functools.lru_cache(maxsize=self.CACHE_SIZE)(self._facts)
        self.holiday_on = functools.lru_cache(maxsize=self.CACHE_SIZE)(self._holiday_on)

    def _facts(
        self,
        country: str,
        region: str,
        day: date,
        southern: bool,
        categories: tuple[str, ...] = PUBLIC_ONLY,
    ) -> DayFacts:
        upcoming = self.holidays.next_after(country, region, day, categories)
        return DayFacts(
            season=calendar.season(day, southern),
            holiday=self.holidays.on(country, region, day, categories),
            next_holiday=upcoming,
            days_to_next_holiday=(upcoming.day - day).days if upcoming else 0,
            retail_seasons=self.retail.active(day, southern, country),
        )

    def _holiday_on(
        self, country: str, region: str, day: date, categories: tuple[str, ...] = PUBLIC_ONLY
    ) -> Holiday | None:
        return self.holidays.on(country, region, day, categories)
