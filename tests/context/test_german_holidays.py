"""The German public holidays of 2026 and 2027 in every Bundesland, written out by hand.

The dates are worked out here, not copied from the holidays package, so a wrong mapping
fails: Easter Sunday is 5 April 2026 and 28 March 2027, so Good Friday is Easter - 2,
Easter Monday + 1, Ascension + 39, Whit Monday + 50, Corpus Christi + 60; Buß- und
Bettag is the Wednesday before 23 November (18 November 2026, 17 November 2027).

Only state-wide holidays count by default. Mariä Himmelfahrt (15 August) is a holiday in
all of Saarland but in Bavaria only in municipalities with a mostly Catholic population,
so it is not in BY's default list; a Bavarian store that observes it says so with
holiday_categories: [catholic] (the holidays package's category for such partial days),
as the demo's Munich store does. The same goes for Fronleichnam in parts of Saxony and
Thuringia. Augsburg's Friedensfest (8 August) belongs to the city's own subdivision.
"""

from __future__ import annotations

from datetime import date

import pytest

from emma.context.calendar import HolidayCalendar

NATIONWIDE_2026 = {
    "01-01": "Neujahr",
    "04-03": "Karfreitag",
    "04-06": "Ostermontag",
    "05-01": "Erster Mai",
    "05-14": "Christi Himmelfahrt",
    "05-25": "Pfingstmontag",
    "10-03": "Tag der Deutschen Einheit",
    "12-25": "Erster Weihnachtstag",
    "12-26": "Zweiter Weihnachtstag",
}
NATIONWIDE_2027 = {
    "01-01": "Neujahr",
    "03-26": "Karfreitag",
    "03-29": "Ostermontag",
    "05-01": "Erster Mai",
    "05-06": "Christi Himmelfahrt",
    "05-17": "Pfingstmontag",
    "10-03": "Tag der Deutschen Einheit",
    "12-25": "Erster Weihnachtstag",
    "12-26": "Zweiter Weihnachtstag",
}

EPIPHANY = {"01-06": "Heilige Drei Könige"}
WOMENS_DAY = {"03-08": "Frauentag"}
ALL_SAINTS = {"11-01": "Allerheiligen"}
REFORMATION = {"10-31": "Reformationstag"}
ASSUMPTION = {"08-15": "Mariä Himmelfahrt"}
CHILDRENS_DAY = {"09-20": "Weltkindertag"}

# Per state: the holidays beyond the nationwide ones, per year.
REGIONAL: dict[str, dict[int, dict[str, str]]] = {
    "BW": {
        2026: {**EPIPHANY, "06-04": "Fronleichnam", **ALL_SAINTS},
        2027: {**EPIPHANY, "05-27": "Fronleichnam", **ALL_SAINTS},
    },
    "BY": {
        2026: {**EPIPHANY, "06-04": "Fronleichnam", **ALL_SAINTS},
        2027: {**EPIPHANY, "05-27": "Fronleichnam", **ALL_SAINTS},
    },
    "BE": {2026: WOMENS_DAY, 2027: WOMENS_DAY},
    "BB": {
        2026: {"04-05": "Ostersonntag", "05-24": "Pfingstsonntag", **REFORMATION},
        2027: {"03-28": "Ostersonntag", "05-16": "Pfingstsonntag", **REFORMATION},
    },
    "HB": {2026: REFORMATION, 2027: REFORMATION},
    "HH": {2026: REFORMATION, 2027: REFORMATION},
    "HE": {2026: {"06-04": "Fronleichnam"}, 2027: {"05-27": "Fronleichnam"}},
    "MV": {2026: {**WOMENS_DAY, **REFORMATION}, 2027: {**WOMENS_DAY, **REFORMATION}},
    "NI": {2026: REFORMATION, 2027: REFORMATION},
    "NW": {
        2026: {"06-04": "Fronleichnam", **ALL_SAINTS},
        2027: {"05-27": "Fronleichnam", **ALL_SAINTS},
    },
    "RP": {
        2026: {"06-04": "Fronleichnam", **ALL_SAINTS},
        2027: {"05-27": "Fronleichnam", **ALL_SAINTS},
    },
    "SL": {
        2026: {"06-04": "Fronleichnam", **ASSUMPTION, **ALL_SAINTS},
        2027: {"05-27": "Fronleichnam", **ASSUMPTION, **ALL_SAINTS},
    },
    "SN": {
        2026: {**REFORMATION, "11-18": "Buß- und Bettag"},
        2027: {**REFORMATION, "11-17": "Buß- und Bettag"},
    },
    "ST": {2026: {**EPIPHANY, **REFORMATION}, 2027: {**EPIPHANY, **REFORMATION}},
    "SH": {2026: REFORMATION, 2027: REFORMATION},
    "TH": {2026: {**CHILDRENS_DAY, **REFORMATION}, 2027: {**CHILDRENS_DAY, **REFORMATION}},
}
NATIONWIDE = {2026: NATIONWIDE_2026, 2027: NATIONWIDE_2027}


def expected(region: str, year: int) -> dict[date, str]:
    days = {**NATIONWIDE[year], **REGIONAL[region][year]}
    return {date(year, int(key[:2]), int(key[3:])): name for key, name in sorted(days.items())}


def test_the_table_covers_all_sixteen_states() -> None:
    assert len(REGIONAL) == 16


@pytest.mark.parametrize("year", [2026, 2027])
@pytest.mark.parametrize("region", sorted(REGIONAL))
def test_public_holidays_per_state(region: str, year: int) -> None:
    calendar = HolidayCalendar("de")
    found = {holiday.day: holiday.name for holiday in calendar.of_year("DE", region, year)}
    assert found == expected(region, year)


@pytest.mark.parametrize("year", [2026, 2027])
def test_every_day_of_the_year_agrees_with_the_table(year: int) -> None:
    # `on` and `next_after` answer from the same tables as of_year; check them day by day.
    calendar = HolidayCalendar("de")
    for region in ("BY", "SN", "TH"):
        table = expected(region, year)
        day = date(year, 1, 1)
        while day.year == year:
            holiday = calendar.on("DE", region, day)
            assert (holiday.name if holiday else None) == table.get(day), (region, day)
            day = date.fromordinal(day.toordinal() + 1)


def test_assumption_in_bavaria_is_a_catholic_category_holiday() -> None:
    calendar = HolidayCalendar("de")
    assert calendar.on("DE", "BY", date(2026, 8, 15)) is None
    holiday = calendar.on("DE", "BY", date(2026, 8, 15), ("catholic", "public"))
    assert holiday is not None and holiday.name == "Mariä Himmelfahrt"
    # Saarland has it state-wide.
    assert calendar.on("DE", "SL", date(2027, 8, 15)) is not None


def test_augsburg_has_its_peace_festival() -> None:
    holiday = HolidayCalendar("de").on("DE", "Augsburg", date(2026, 8, 8))
    assert holiday is not None and holiday.name == "Augsburger Hohes Friedensfest"
