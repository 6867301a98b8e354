"""Configuration of the trigger engine, from EMMA_* environment variables and flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from emma.runtime.config import check_port, require, setting
from emma.triggers.rules import default_rules_path


@dataclasses.dataclass(frozen=True)
class TriggerConfig:
    """The trigger engine: proactive moments from recorded events, to the outbound stream."""

    host: str = setting("127.0.0.1", "EMMA_TRIGGERS_HOST", "interface of the health endpoint")
    port: int = setting(
        50055, "EMMA_TRIGGERS_PORT", "port of the health endpoint; 0 picks a free one"
    )
    metrics_port: int = setting(
        9465, "EMMA_TRIGGERS_METRICS_PORT", "port serving Prometheus /metrics; 0: off"
    )
    shutdown_grace_s: float = setting(
        5.0, "EMMA_SHUTDOWN_GRACE_S", "seconds in-flight calls get to finish on shutdown"
    )
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0", "EMMA_REDIS_URL", "Redis of the streams and trigger state"
    )
    profile_addr: str = setting("127.0.0.1:50052", "EMMA_PROFILE_ADDR", "profile service address")
    context_addr: str = setting("127.0.0.1:50053", "EMMA_CONTEXT_ADDR", "context service address")
    decision_addr: str = setting(
        "127.0.0.1:50051", "EMMA_DECISION_ADDR", "decision service address"
    )
    rules_path: Path = setting(  # noqa: RUF009 - a Path is immutable
        default_rules_path(), "EMMA_TRIGGER_RULES", "trigger rules YAML file"
    )
    events_stream: str = setting(
        "emma:profile-events",
        "EMMA_PROFILE_EVENTS_STREAM",
        "Redis stream each recorded batch is appended to for the trigger engine; empty: off",
    )
    outbound_stream: str = setting(
        "emma:outbound", "EMMA_OUTBOUND_STREAM", "Redis stream of actions for delivery systems"
    )
    outbound_maxlen: int = setting(
        100_000, "EMMA_OUTBOUND_MAXLEN", "approximate length the outbound stream keeps"
    )
    state_prefix: str = setting(
        "emma:trg", "EMMA_TRIGGER_KEY_PREFIX", "prefix of the trigger engine's Redis keys"
    )
    group: str = setting(
        "emma-triggers", "EMMA_TRIGGER_GROUP", "consumer group of the engines on the events stream"
    )
    consumer: str = setting(
        "", "EMMA_TRIGGER_CONSUMER", "this engine's consumer name; host and pid when empty"
    )
    staleness_s: float = setting(
        900.0,
        "EMMA_TRIGGER_STALENESS_S",
        "events (and due timers) older than this are not fired, e.g. a backlog after an outage",
    )
    max_firings: int = setting(
        3, "EMMA_TRIGGER_MAX_FIRINGS", "most firings per customer within a firing window"
    )
    firing_window_s: float = setting(
        86_400.0, "EMMA_TRIGGER_FIRING_WINDOW_S", "seconds of the per-customer firing limit"
    )
    claim_idle_s: float = setting(
        60.0,
        "EMMA_TRIGGER_CLAIM_IDLE_S",
        "seconds an entry stays unacknowledged before another engine claims it",
    )
    poll_s: float = setting(
        1.0, "EMMA_TRIGGER_POLL_S", "seconds between scans of due timers (and longest block)"
    )
    decide_timeout_s: float = setting(
        2.0, "EMMA_TRIGGER_DECIDE_TIMEOUT_S", "deadline of the engine's Decide and lookups"
    )
    redeem_reward: float = setting(
        1.0,
        "EMMA_TRIGGER_REDEEM_REWARD",
        "reward sent for the decision behind a redeemed wallet offer",
    )
    default_time_zone: str = setting(
        "Europe/Berlin", "EMMA_DEFAULT_TIME_ZONE", "IANA zone for birthdays' local send hour"
    )

    def __post_init__(self) -> None:
        check_port(self.port, "EMMA_TRIGGERS_PORT")
        require(self.outbound_stream != "", "EMMA_OUTBOUND_STREAM: must not be empty")
        require(self.events_stream != "", "EMMA_PROFILE_EVENTS_STREAM: must not be empty")
        require(self.outbound_maxlen >= 1, "EMMA_OUTBOUND_MAXLEN: must be >= 1")
        require(self.staleness_s > 0, "EMMA_TRIGGER_STALENESS_S: must be > 0")
        require(self.max_firings >= 1, "EMMA_TRIGGER_MAX_FIRINGS: must be >= 1")
        require(self.firing_window_s > 0, "EMMA_TRIGGER_FIRING_WINDOW_S: must be > 0")
        require(self.claim_idle_s > 0, "EMMA_TRIGGER_CLAIM_IDLE_S: must be > 0")
        require(self.poll_s > 0, "EMMA_TRIGGER_POLL_S: must be > 0")
        require(self.decide_timeout_s > 0, "EMMA_TRIGGER_DECIDE_TIMEOUT_S: must be > 0")
