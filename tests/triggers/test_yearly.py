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
from emma.triggers.kinds import Firing, Timer, anniversary, next_year
from emma.triggers.rules import default_rules_path, load_rules
from emma.triggers.timers import RETRY_SUFFIX

from .conftest import FRIDAY_NOON, Moments, customer, event, minutes

BERLIN = "Europe/Berlin"
RULE = load_rules(default_rules_path()).named("birthday-gesture")
assert RULE is not None and RULE.send_hour == 9


def birthday(ref: common_pb2.CustomerRef, when: datetime, day: date) -> profile_pb2.Event:
    life = profile_pb2.LifeEvent(kind=profile_pb2.LIFE_EVENT_KIND_BIRTHDAY)
    life.time.FromDatetime(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
    return event(ref, when, life_event=life)


def nine_in_berlin(day: date) -> datetime:
    """09:00 local time in Berlin, the rule's send hour, in UTC."""
    local = datetime(day.year, day.month, day.day, 9, tzinfo=zoneinfo.ZoneInfo(BERLIN))
    return local.astimezone(UTC)


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


# --- the engine -------------------------------------------------------------------------------


async def test_a_birthday_fires_every_year_without_a_new_event(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 20)))
    await moments.step()
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
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 20)))
    await moments.step()
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
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1992, 2, 29)))
    await moments.step()
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
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 20)))
    await moments.step()
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
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 13)))
    await moments.step()
    assert len(await gestures(moments)) == 1
    assert list((await due_times(moments)).values()) == [nine_in_berlin(date(2026, 6, 13))]
    moments.at(nine_in_berlin(date(2026, 6, 13)) + minutes(5))
    await moments.step()
    assert len(await gestures(moments)) == 2


async def test_two_replicas_take_a_yearly_timer_once(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 20)))
    await moments.step()
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
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 20)))
    await moments.step()
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
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 20)))
    await moments.step()
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
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 20)))
    await moments.step()
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
    anna = customer()
    await moments.consent(anna)
    await moments.record(birthday(anna, FRIDAY_NOON - minutes(1), date(1990, 6, 20)))
    await moments.step()
    prefix = moments.engine.config.state_prefix
    [key] = await due_times(moments)
    body = json.loads(await moments.redis.hget(f"{prefix}:timer", key))
    del body["day"], body["year"]
    await moments.redis.hset(f"{prefix}:timer", key, json.dumps(body))
    moments.at(nine_in_berlin(date(2025, 6, 20)) + minutes(5))
    await moments.step()
    assert len(await gestures(moments)) == 1
    assert await due_times(moments) == {key: nine_in_berlin(date(2026, 6, 20))}
