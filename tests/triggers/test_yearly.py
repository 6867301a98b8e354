"""Birthdays and anniversaries recur: each taken timer arms the next year's, on the test's clock."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import zoneinfo
from datetime import UTC, date, datetime, timedelta

import grpc

from emma.common.v1 import common_pb2
from emma.decision.v1 import decision_pb2_grpc
from emma.profile.v1 import profile_pb2
from emma.triggers.engine import Engine
from emma.triggers.erasure import year_dedup_s, year_window
from emma.triggers.kinds import Firing, Timer, anniversary, next_year, yearly
from emma.triggers.rules import default_rules_path, load_rules
from emma.triggers.timers import RETRY_SUFFIX

from .conftest import FRIDAY_NOON, Moments, customer, event, minutes

BERLIN = "Europe/Berlin"
RULE = load_rules(default_rules_path()).named("birthday-gesture")
assert RULE is not None and RULE.send_hour == 9


def birthday(
    ref: common_pb2.CustomerRef,
    when: datetime,
    day: date,
    kind: int = profile_pb2.LIFE_EVENT_KIND_BIRTHDAY,
) -> profile_pb2.Event:
    life = profile_pb2.LifeEvent(kind=kind)  # type: ignore[arg-type]
    life.time.FromDatetime(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
    return event(ref, when, life_event=life)


def wedding_day(ref: common_pb2.CustomerRef, when: datetime, day: date) -> profile_pb2.Event:
    """The customer's (wedding) anniversary: the same rule as the birthday."""
    return birthday(ref, when, day, profile_pb2.LIFE_EVENT_KIND_ANNIVERSARY)


# Anna's birthday and wedding anniversary: different days of the year.
BIRTHDAY, WEDDING = date(1990, 6, 20), date(2015, 9, 12)


def nine_in_berlin(day: date) -> datetime:
    """09:00 local time in Berlin, the rule's send hour, in UTC."""
    local = datetime(day.year, day.month, day.day, 9, tzinfo=zoneinfo.ZoneInfo(BERLIN))
    return local.astimezone(UTC)


async def born_on(
    day: date, moments: Moments, married: date | None = None
) -> common_pb2.CustomerRef:
    """A new customer who consents and whose birthday, `day` (and wedding day, `married`),
    is recorded on Friday noon."""
    anna = customer()
    await moments.consent(anna)
    events = [birthday(anna, FRIDAY_NOON - minutes(1), day)]
    if married is not None:
        events.append(wedding_day(anna, FRIDAY_NOON - minutes(2), married))
    await moments.record(*events)
    await moments.step()
    return anna


async def due_times(moments: Moments) -> dict[str, datetime]:
    prefix = moments.engine.config.state_prefix
    pairs = await moments.redis.zrange(f"{prefix}:due", 0, -1, withscores=True)
    return {key.decode(): datetime.fromtimestamp(score, UTC) for key, score in pairs}


async def gestures(moments: Moments) -> list[dict[str, str]]:
    return [a for a in await moments.outbound() if a["rule"] == "birthday-gesture"]


# --- the pure part ----------------------------------------------------------------------------


def test_29_february_falls_on_28_february_except_in_leap_years() -> None:
    assert RULE is not None
    firing = Firing("birthday-gesture", (3, "anna"), "ev", nine_in_berlin(date(2024, 2, 29)))
    firing = dataclasses.replace(firing, day="02-29", year=2024)
    days = []
    for _ in range(4):
        timer = next_year(RULE, "k", firing, firing.at, BERLIN)
        days.append(timer.due)
        firing = timer.firing
    assert days == [nine_in_berlin(date(y, 2, 28)) for y in (2025, 2026, 2027)] + [
        nine_in_berlin(date(2028, 2, 29))
    ]
    assert firing.day == "02-29" and firing.year == 2028


def test_years_missed_while_nothing_ran_are_not_made_up() -> None:
    assert RULE is not None
    firing = Firing("birthday-gesture", (3, "anna"), "ev", nine_in_berlin(date(2022, 6, 20)))
    firing = dataclasses.replace(firing, day="06-20", year=2022)
    # Taken in March 2025: this year's day is still ahead.
    assert next_year(RULE, "k", firing, datetime(2025, 3, 1, tzinfo=UTC), BERLIN).due == (
        nine_in_berlin(date(2025, 6, 20))
    )
    # Taken an hour after this year's send time: next year.
    late = nine_in_berlin(date(2025, 6, 20)) + timedelta(hours=1)
    timer = next_year(RULE, "k", firing, late, BERLIN)
    assert (timer.due, timer.firing.year) == (nine_in_berlin(date(2026, 6, 20)), 2026)


def test_on_the_day_it_fires_and_arms_next_year() -> None:
    assert RULE is not None
    anna = customer()
    now = nine_in_berlin(date(2025, 6, 20)) + timedelta(hours=3)
    fired, armed = anniversary(RULE, birthday(anna, now, date(1990, 6, 20)), now, now, BERLIN)
    assert isinstance(fired, Firing) and (fired.at, fired.year) == (now, 2025)
    assert isinstance(armed, Timer) and armed.due == nine_in_berlin(date(2026, 6, 20))


def test_a_timer_without_its_moment_takes_it_from_its_key() -> None:
    assert RULE is not None
    firing = Firing("birthday-gesture", (3, "anna"), "ev", nine_in_berlin(date(2025, 9, 12)))
    firing = dataclasses.replace(firing, day="09-12", year=2025)
    for key in ("birthday-gesture|p-1|anniversary", "birthday-gesture|p-1|anniversary|retry"):
        assert yearly(RULE, firing, BERLIN, key).moment == "anniversary"
    named = dataclasses.replace(firing, moment="birthday")
    assert yearly(RULE, named, BERLIN, "birthday-gesture|p-1|anniversary") == named


# --- the engine -------------------------------------------------------------------------------


async def test_a_birthday_fires_every_year_without_a_new_event(moments: Moments) -> None:
    await born_on(date(1990, 6, 20), moments)
    [(key, due)] = (await due_times(moments)).items()
    assert due == nine_in_berlin(date(2025, 6, 20))

    for year in (2025, 2026, 2027):
        moments.at(nine_in_berlin(date(year, 6, 20)) + minutes(5))
        await moments.step()
        await moments.step()  # nothing more the same day
        assert len(await gestures(moments)) == year - 2024
        assert await due_times(moments) == {key: nine_in_berlin(date(year + 1, 6, 20))}
    sent = await gestures(moments)
    assert {a["offer_id"] for a in sent} == {"birthday-card"}
    assert {a["recipient"] for a in sent} == {"app_user_id:anna"}
    assert moments.engine.stats["rearmed"] == 3


async def test_a_stale_timer_is_skipped_and_armed_for_next_year(moments: Moments) -> None:
    await born_on(date(1990, 6, 20), moments)
    # The engine was down over the birthday: the timer is a day late, too late to send.
    moments.at(nine_in_berlin(date(2025, 6, 21)))
    await moments.step()
    assert moments.engine.stats["skipped.stale"] == 1
    assert await gestures(moments) == []
    assert list((await due_times(moments)).values()) == [nine_in_berlin(date(2026, 6, 20))]
    moments.at(nine_in_berlin(date(2026, 6, 20)) + minutes(1))
    await moments.step()
    assert len(await gestures(moments)) == 1


async def test_a_leap_day_birthday_through_the_engine(moments: Moments) -> None:
    await born_on(date(1992, 2, 29), moments)
    seen = [next(iter((await due_times(moments)).values()))]
    for _ in range(3):
        moments.at(seen[-1] + minutes(1))
        await moments.step()
        seen.append(next(iter((await due_times(moments)).values())))
    assert seen == [nine_in_berlin(date(y, 2, 28)) for y in (2026, 2027)] + [
        nine_in_berlin(date(2028, 2, 29)),
        nine_in_berlin(date(2029, 2, 28)),
    ]
    assert len(await gestures(moments)) == 3


async def test_one_gesture_per_year_however_often_the_birthday_is_sent(moments: Moments) -> None:
    anna = await born_on(date(1990, 6, 20), moments)
    day = nine_in_berlin(date(2025, 6, 20))
    moments.at(day + minutes(5))
    await moments.step()
    # A CRM sync sends the birthday again later on the day: it would fire at once, but the
    # year's gesture went out; next year's timer stays as it was.
    moments.at(day + timedelta(hours=5))
    await moments.record(birthday(anna, moments.now - minutes(1), date(1990, 6, 20)))
    await moments.step()
    assert moments.engine.stats["skipped.dedup"] == 1
    assert len(await gestures(moments)) == 1
    assert list((await due_times(moments)).values()) == [nine_in_berlin(date(2026, 6, 20))]
    moments.at(nine_in_berlin(date(2026, 6, 20)) + minutes(5))
    await moments.step()
    assert len(await gestures(moments)) == 2


async def test_recorded_on_the_day_it_fires_at_once_and_next_year(moments: Moments) -> None:
    await born_on(date(1990, 6, 13), moments)
    assert len(await gestures(moments)) == 1
    assert list((await due_times(moments)).values()) == [nine_in_berlin(date(2026, 6, 13))]
    moments.at(nine_in_berlin(date(2026, 6, 13)) + minutes(5))
    await moments.step()
    assert len(await gestures(moments)) == 2


async def test_two_replicas_take_a_yearly_timer_once(moments: Moments) -> None:
    await born_on(date(1990, 6, 20), moments)
    mine = moments.engine
    other = Engine(
        dataclasses.replace(mine.config, consumer="other"),
        mine.rules,
        mine.redis,
        mine.stubs,
        mine.clock,
    )
    moments.at(nine_in_berlin(date(2025, 6, 20)) + minutes(5))
    taken = await asyncio.gather(*(engine.scan_timers() for engine in (mine, other) * 3))
    assert sum(taken) == 1
    assert len(await gestures(moments)) == 1
    assert list((await due_times(moments)).values()) == [nine_in_berlin(date(2026, 6, 20))]


async def test_a_failed_decide_is_retried_beside_next_years_timer(moments: Moments) -> None:
    await born_on(date(1990, 6, 20), moments)
    [key] = await due_times(moments)
    working = moments.engine.stubs.decision
    # Nothing listens on port 1: Decide fails as it does when the decision service is down.
    down = grpc.aio.insecure_channel("127.0.0.1:1")
    moments.engine.stubs.decision = decision_pb2_grpc.DecisionServiceStub(down)
    try:
        moments.at(nine_in_berlin(date(2025, 6, 20)) + minutes(5))
        await moments.step()
    finally:
        moments.engine.stubs.decision = working
        await down.close(None)
    assert await gestures(moments) == []
    assert set(await due_times(moments)) == {key, key + RETRY_SUFFIX}
    moments.at(moments.now + minutes(1))
    await moments.step()
    assert len(await gestures(moments)) == 1
    assert await due_times(moments) == {key: nine_in_berlin(date(2026, 6, 20))}
    moments.at(nine_in_berlin(date(2026, 6, 20)) + minutes(5))
    await moments.step()
    assert len(await gestures(moments)) == 2


async def test_erasure_drops_the_rearmed_timer(moments: Moments) -> None:
    anna = await born_on(date(1990, 6, 20), moments)
    moments.at(nine_in_berlin(date(2025, 6, 20)) + minutes(5))
    await moments.step()
    assert len(await due_times(moments)) == 1
    await moments.profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=anna))
    await moments.step()
    prefix = moments.engine.config.state_prefix
    assert await due_times(moments) == {}
    assert await moments.redis.hlen(f"{prefix}:timer") == 0
    dedup = [key async for key in moments.redis.scan_iter(f"{prefix}:dedup:*")]
    assert dedup == []
    assert await gestures(moments) == []  # the erasure took last year's action too
    moments.at(nine_in_berlin(date(2026, 6, 20)) + minutes(5))
    await moments.step()
    assert await gestures(moments) == []
    assert moments.engine.stats["fired"] == 1


async def test_a_customer_whose_profile_is_gone_is_not_rearmed(moments: Moments) -> None:
    anna = await born_on(date(1990, 6, 20), moments)
    found = await moments.profile.GetProfile(profile_pb2.GetProfileRequest(customer=anna))
    # The profile expires (its TTL ran out: no writes for a year).
    pattern = f"{{emma:c:{found.profile.customer_id}}}*"
    for key in [k async for k in moments.redis.scan_iter(pattern)]:
        await moments.redis.pexpire(key, 1)
    await asyncio.sleep(0.05)
    moments.at(nine_in_berlin(date(2025, 6, 20)) + minutes(5))
    await moments.step()
    assert moments.engine.stats["skipped.unknown_customer"] == 1
    assert await due_times(moments) == {}


async def test_a_timer_stored_without_its_day_recurs_too(moments: Moments) -> None:
    await born_on(date(1990, 6, 20), moments)
    prefix = moments.engine.config.state_prefix
    [key] = await due_times(moments)
    body = json.loads(await moments.redis.hget(f"{prefix}:timer", key))
    del body["day"], body["year"]
    await moments.redis.hset(f"{prefix}:timer", key, json.dumps(body))
    moments.at(nine_in_berlin(date(2025, 6, 20)) + minutes(5))
    await moments.step()
    assert len(await gestures(moments)) == 1
    assert await due_times(moments) == {key: nine_in_berlin(date(2026, 6, 20))}


async def dedup_keys(moments: Moments) -> list[str]:
    prefix = moments.engine.config.state_prefix
    return sorted([key.decode() async for key in moments.redis.scan_iter(f"{prefix}:dedup:*")])


async def test_a_birthday_and_an_anniversary_both_get_their_gesture_every_year(
    moments: Moments,
) -> None:
    anna = await born_on(BIRTHDAY, moments, married=WEDDING)
    assert sorted((await due_times(moments)).values()) == [
        nine_in_berlin(date(2025, 6, 20)),
        nine_in_berlin(date(2025, 9, 12)),
    ]
    sent = 0
    for year in (2025, 2026):
        for day in (date(year, 6, 20), date(year, 9, 12)):
            moments.at(nine_in_berlin(day) + minutes(5))
            await moments.step()
            sent += 1
            assert len(await gestures(moments)) == sent
            # A CRM sync sends both days again on the day: still one gesture for the day.
            moments.at(nine_in_berlin(day) + timedelta(hours=4))
            await moments.record(
                birthday(anna, moments.now - minutes(1), BIRTHDAY),
                wedding_day(anna, moments.now - minutes(1), WEDDING),
            )
            await moments.step()
            await moments.step()
            assert len(await gestures(moments)) == sent
        assert sorted((await due_times(moments)).values()) == [
            nine_in_berlin(date(year + 1, 6, 20)),
            nine_in_berlin(date(year + 1, 9, 12)),
        ]
    assert moments.engine.stats["fired"] == 4
    assert moments.engine.stats["skipped.dedup"] == 4
    windows = [key.rsplit(":", 1)[1] for key in await dedup_keys(moments)]
    assert windows == ["y2025-anniversary", "y2025-birthday", "y2026-anniversary", "y2026-birthday"]


async def test_timers_stored_without_their_moment_fire_for_each_day(moments: Moments) -> None:
    await born_on(BIRTHDAY, moments, married=WEDDING)
    prefix = moments.engine.config.state_prefix
    stored = await due_times(moments)
    for key in stored:
        body = json.loads(await moments.redis.hget(f"{prefix}:timer", key))
        del body["moment"]
        await moments.redis.hset(f"{prefix}:timer", key, json.dumps(body))
    for day in (date(2025, 6, 20), date(2025, 9, 12)):
        moments.at(nine_in_berlin(day) + minutes(5))
        await moments.step()
    assert len(await gestures(moments)) == 2
    assert set(await due_times(moments)) == set(stored)
    moments_of = {
        json.loads(body)["moment"] for body in await moments.redis.hvals(f"{prefix}:timer")
    }
    assert moments_of == {"birthday", "anniversary"}


async def test_a_gesture_under_an_older_year_key_counts_on_its_day_only(
    moments: Moments,
) -> None:
    anna = await born_on(BIRTHDAY, moments, married=WEDDING)
    moments.at(nine_in_berlin(date(2025, 6, 20)) + minutes(5))
    await moments.step()
    assert len(await gestures(moments)) == 1
    # As written before dedup was per moment: one key for the rule's year.
    [key] = await dedup_keys(moments)
    older = key.replace(year_window(2025, "birthday"), year_window(2025))
    assert RULE is not None
    await moments.redis.rename(key, older)
    written = moments.now

    async def later(when: datetime) -> None:
        """The test's clock moves on; the key's TTL counts down as it would have."""
        moments.at(when)
        await moments.redis.expire(
            older, year_dedup_s(RULE) - int((when - written).total_seconds())
        )

    # The birthday sent again on the day: that key was this day's gesture.
    await later(written + timedelta(hours=4))
    await moments.record(birthday(anna, moments.now - minutes(1), BIRTHDAY))
    await moments.step()
    assert moments.engine.stats["skipped.dedup"] == 1
    assert len(await gestures(moments)) == 1
    # The anniversary is another day: it gets its gesture.
    await later(nine_in_berlin(date(2025, 9, 12)) + minutes(5))
    await moments.step()
    assert len(await gestures(moments)) == 2


async def test_erasure_drops_every_moments_timers_and_dedup_keys(moments: Moments) -> None:
    anna = await born_on(BIRTHDAY, moments, married=WEDDING)
    for day in (date(2025, 6, 20), date(2025, 9, 12)):
        moments.at(nine_in_berlin(day) + minutes(5))
        await moments.step()
    keys = await dedup_keys(moments)
    assert len(keys) == 2
    # And one in the older layout, as an earlier version wrote it.
    assert RULE is not None
    older = keys[0].rsplit(":", 1)[0] + ":" + year_window(2024)
    await moments.redis.set(older, "1", ex=year_dedup_s(RULE))
    assert len(await due_times(moments)) == 2
    await moments.profile.EraseCustomer(profile_pb2.EraseCustomerRequest(customer=anna))
    await moments.step()
    prefix = moments.engine.config.state_prefix
    assert await due_times(moments) == {}
    assert await moments.redis.hlen(f"{prefix}:timer") == 0
    assert await dedup_keys(moments) == []
