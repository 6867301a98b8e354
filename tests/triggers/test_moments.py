"""Each trigger kind end to end: events through the profile's RecordEvents, the engine
stepped, actions read from the outbound stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.field_mask_pb2 import FieldMask

from emma.common.v1 import common_pb2
from emma.decision.log_line import line_text
from emma.profile.v1 import profile_pb2

from .conftest import FRIDAY_NOON, MITTE, Moments, customer, event, minutes


def ping(ref: common_pb2.CustomerRef, when: datetime, where: tuple[float, float] = MITTE):
    return event(
        ref,
        when,
        location=profile_pb2.LocationPing(
            location=common_pb2.GeoPoint(latitude=where[0], longitude=where[1]), accuracy=10
        ),
    )


def life(ref: common_pb2.CustomerRef, when: datetime, kind: int, **fields: object):
    return event(ref, when, life_event=profile_pb2.LifeEvent(kind=kind, **fields))  # type: ignore[arg-type]


def purchase(ref: common_pb2.CustomerRef, when: datetime, product: str, category: str):
    return event(
        ref,
        when,
        purchase=profile_pb2.Purchase(
            items=[common_pb2.BasketItem(product_id=product, category=category, amount=5)],
            currency="EUR",
        ),
    )


async def test_geofence_entry_pushes_the_store_offer_once_per_window(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    await moments.record(ping(anna, FRIDAY_NOON - minutes(1)))
    await moments.step()
    [action] = await moments.outbound()
    assert action["rule"] == "geofence-entry"
    assert action["offer_id"] == "mitte-brezel-push"
    assert action["channel"] == "push"
    assert action["store_id"] == "berlin-mitte"
    assert action["customer"].startswith("p-") and "anna" not in action["customer"]
    assert action["recipient"] == "app_user_id:anna"
    assert datetime.fromisoformat(action["expires_at"]) > datetime.fromisoformat(action["send_at"])
    # A second entry the same day is deduplicated; a ping far from any store never fires.
    await moments.record(ping(anna, FRIDAY_NOON), ping(anna, FRIDAY_NOON, (48.0, 11.0)))
    await moments.step()
    assert len(await moments.outbound()) == 1
    assert moments.engine.stats["skipped.dedup"] == 1


async def test_the_decision_is_logged_as_a_moment(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    await moments.record(ping(anna, FRIDAY_NOON - minutes(1)))
    await moments.step()
    [action] = await moments.outbound()
    entries = await moments.redis.xrange("emma:decisions")
    logged = [f for _, f in entries if f[b"event_id"].decode() == action["event_id"]]
    assert logged and '"moment":{"rule":"geofence-entry"' in line_text(logged[0])


async def test_withdrawn_consent_sends_nothing(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    await moments.consent(anna, profile_pb2.CONSENT_STATUS_WITHDRAWN)
    await moments.record(ping(anna, FRIDAY_NOON - minutes(1)))
    await moments.step()
    assert await moments.outbound() == []
    assert moments.engine.stats["skipped.no_offer"] == 1


async def test_unknown_customers_and_closed_stores_fire_nothing(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    sunday = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)  # berlin-mitte is closed on Sundays
    moments.at(sunday)
    await moments.record(ping(anna, sunday - minutes(1)))
    await moments.step()
    assert await moments.outbound() == []


async def test_a_backlog_is_not_fired_and_a_customer_is_not_flooded(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    # Events from before an outage: older than the staleness, never fired.
    old = FRIDAY_NOON - timedelta(hours=3)
    await moments.record(ping(anna, old), life(anna, old, profile_pb2.LIFE_EVENT_KIND_NEW_BABY))
    await moments.step()
    assert await moments.outbound() == []
    assert moments.engine.stats["skipped.stale"] == 2
    # Fresh events of many rules: at most EMMA_TRIGGER_MAX_FIRINGS (3) a day.
    now = FRIDAY_NOON - minutes(1)
    await moments.record(
        ping(anna, now),
        life(anna, now, profile_pb2.LIFE_EVENT_KIND_NEW_BABY),
        life(anna, now, profile_pb2.LIFE_EVENT_KIND_MARRIED),
        life(anna, now, profile_pb2.LIFE_EVENT_KIND_MOVED, store_id="berlin-mitte"),
    )
    await moments.step()
    assert len(await moments.outbound()) == 3
    assert moments.engine.stats["skipped.customer_limit"] == 1


async def test_life_events_welcome_congratulate(moments: Moments) -> None:
    anna, ben = customer(), customer("ben")
    for ref in (anna, ben):
        await moments.consent(ref)
    now = FRIDAY_NOON - minutes(1)
    await moments.record(
        life(anna, now, profile_pb2.LIFE_EVENT_KIND_MOVED, store_id="berlin-mitte"),
        life(ben, now, profile_pb2.LIFE_EVENT_KIND_NEW_BABY),
    )
    await moments.step()
    offers = {a["recipient"]: (a["rule"], a["offer_id"]) for a in await moments.outbound()}
    assert offers == {
        "app_user_id:anna": ("moved-welcome", "welcome-home"),
        "app_user_id:ben": ("new-baby", "baby-starter"),
    }


async def test_birthday_is_a_gesture_on_the_day(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    birthday = profile_pb2.LifeEvent(kind=profile_pb2.LIFE_EVENT_KIND_BIRTHDAY)
    birthday.time.FromDatetime(datetime(1990, 6, 20, 12, tzinfo=UTC))
    await moments.record(event(anna, FRIDAY_NOON - minutes(1), life_event=birthday))
    await moments.step()
    assert await moments.outbound() == []  # not yet: a timer waits for the day
    moments.at(datetime(2025, 6, 20, 7, 5, tzinfo=UTC))  # 09:05 in Berlin on the day
    await moments.step()
    [action] = await moments.outbound()
    assert (action["rule"], action["offer_id"]) == ("birthday-gesture", "birthday-card")


async def test_viewed_not_bought_reminds_unless_bought(moments: Moments) -> None:
    anna, ben = customer(), customer("ben")
    for ref in (anna, ben):
        await moments.consent(ref)
    look = profile_pb2.Interaction(
        kind=profile_pb2.INTERACTION_KIND_VIEW, product_id="emmentaler", category="cheese"
    )
    now = FRIDAY_NOON - minutes(1)
    await moments.record(event(anna, now, interaction=look), event(ben, now, interaction=look))
    await moments.record(purchase(ben, now + minutes(0.5), "emmentaler", "cheese"))
    await moments.step()
    assert await moments.outbound() == []
    moments.at(FRIDAY_NOON + timedelta(hours=2))
    await moments.step()
    [action] = await moments.outbound()
    assert action["recipient"] == "app_user_id:anna"
    assert (action["rule"], action["offer_id"]) == ("viewed-not-bought", "cheese-look")


async def test_regular_coffee_purchases_bring_a_reminder_before_due(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    start = FRIDAY_NOON - timedelta(days=28)
    await moments.record(
        *(
            purchase(anna, start + timedelta(days=14 * i), "filter_coffee", "coffee")
            for i in range(3)
        )
    )
    await moments.step()
    assert await moments.outbound() == []
    # Due 14 days after the last purchase; the reminder goes a day (the rule's lead) earlier.
    moments.at(FRIDAY_NOON + timedelta(days=13, minutes=1))
    await moments.step()
    [action] = await moments.outbound()
    assert (action["rule"], action["offer_id"]) == ("coffee-replenishment", "coffee-reminder")


async def test_unhappy_contact_recovers_and_holds_back_promotions(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    now = FRIDAY_NOON - minutes(1)
    await moments.record(
        event(anna, now, support_contact=profile_pb2.SupportContact(sentiment=-0.9, topic="x"))
    )
    await moments.step()
    await moments.record(ping(anna, now))
    await moments.step()
    [action] = await moments.outbound()
    assert (action["rule"], action["offer_id"]) == ("service-recovery", "sorry-voucher")
    assert moments.engine.stats["skipped.cooldown"] == 1


async def test_quiet_hours_defer_the_send(moments: Moments) -> None:
    anna = customer()
    await moments.consent(anna)
    # Active in the evening (purchases at 19:00 Berlin), quiet around noon.
    evenings = [
        purchase(anna, FRIDAY_NOON - timedelta(days=d) + timedelta(hours=7), "brot", "bakery")
        for d in (1, 2, 3)
    ]
    await moments.record(*evenings)
    await moments.profile.UpdatePreferences(
        profile_pb2.UpdatePreferencesRequest(
            customer=anna,
            preferences=profile_pb2.Preferences(
                quiet_hours=profile_pb2.QuietHours(start_minute=600, end_minute=840, enabled=True)
            ),
            update_mask=FieldMask(paths=["quiet_hours"]),
        )
    )
    await moments.step()
    await moments.record(life(anna, FRIDAY_NOON - minutes(1), profile_pb2.LIFE_EVENT_KIND_NEW_BABY))
    await moments.step()
    [action] = await moments.outbound()
    send_at = datetime.fromisoformat(action["send_at"])
    assert action["channel"] in ("push", "email")
    if action["channel"] == "push":
        assert send_at > FRIDAY_NOON + timedelta(hours=2)  # after quiet hours, not now
    else:
        assert send_at == FRIDAY_NOON  # e-mail is not an interrupting channel
