"""Configuration of the profile service, from EMMA_* environment variables and flags."""

from __future__ import annotations

import dataclasses
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emma.runtime.config import check_port, require, setting

_KEY_PREFIX_FORBIDDEN = set("{}: \t\r\n")
# redis+cluster://host:port names any node of a Redis Cluster (emma.runtime.redis_client).
_URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")


@dataclasses.dataclass(frozen=True)
class ProfileConfig:
    """The profile service: a customer data platform on Redis."""

    host: str = setting("127.0.0.1", "EMMA_PROFILE_HOST", "address to listen on")
    port: int = setting(50052, "EMMA_PROFILE_PORT", "port to listen on (0: any free port)")
    metrics_port: int = setting(
        9462, "EMMA_PROFILE_METRICS_PORT", "port serving Prometheus /metrics; 0: off"
    )
    workers: int = setting(
        1,
        "EMMA_PROFILE_WORKERS",
        "processes serving the port together (SO_REUSEPORT); 1: a single process",
    )
    shutdown_grace_s: float = setting(
        5.0, "EMMA_SHUTDOWN_GRACE_S", "seconds in-flight calls get to finish on shutdown"
    )
    redis_url: str = setting("redis://127.0.0.1:6379/0", "EMMA_REDIS_URL", "Redis holding profiles")
    key_prefix: str = setting("emma", "EMMA_PROFILE_KEY_PREFIX", "prefix of every Redis key")
    affinity_half_life_days: float = setting(
        30.0, "EMMA_AFFINITY_HALF_LIFE_DAYS", "days after which an affinity counts half"
    )
    profile_ttl_days: float = setting(
        365.0, "EMMA_PROFILE_TTL_DAYS", "days without writes after which a profile expires"
    )
    max_batch_events: int = setting(
        1000, "EMMA_MAX_BATCH_EVENTS", "most events accepted in one RecordEvents batch"
    )
    replay_window_days: float = setting(
        7.0,
        "EMMA_REPLAY_WINDOW_DAYS",
        "days an event id is remembered after it was applied, so a replay changes nothing",
    )
    events_stream: str = setting(
        "emma:profile-events",
        "EMMA_PROFILE_EVENTS_STREAM",
        "Redis stream each recorded batch is appended to for the trigger engine; empty: off",
    )
    events_stream_maxlen: int = setting(
        100_000, "EMMA_PROFILE_EVENTS_MAXLEN", "approximate length the profile-events stream keeps"
    )
    wallet_days: float = setting(
        14.0,
        "EMMA_WALLET_DAYS",
        "days a delivered offer stays open when its delivery set no expiry",
    )
    default_time_zone: str = setting(
        "Europe/Berlin",
        "EMMA_DEFAULT_TIME_ZONE",
        "IANA zone for active hours when an event carries none",
    )

    def __post_init__(self) -> None:
        check_port(self.port, "EMMA_PROFILE_PORT")
        check_port(self.metrics_port, "EMMA_PROFILE_METRICS_PORT")
        require(self.host != "", "EMMA_PROFILE_HOST: must not be empty")
        require(1 <= self.workers <= 64, f"EMMA_PROFILE_WORKERS={self.workers}: must be 1..64")
        require(self.shutdown_grace_s >= 0, "EMMA_SHUTDOWN_GRACE_S: must be >= 0")
        require(
            self.redis_url.startswith(_URL_SCHEMES),
            f"EMMA_REDIS_URL={self.redis_url!r}: expected a redis://, rediss://, unix:// or "
            "redis+cluster:// URL",
        )
        # The prefix becomes part of a hash tag; braces or colons would break slot routing.
        require(
            self.key_prefix != "" and not (set(self.key_prefix) & _KEY_PREFIX_FORBIDDEN),
            f"EMMA_PROFILE_KEY_PREFIX={self.key_prefix!r}: must be non-empty, "
            "without braces, colons or whitespace",
        )
        require(
            self.affinity_half_life_days > 0,
            f"EMMA_AFFINITY_HALF_LIFE_DAYS={self.affinity_half_life_days}: must be > 0",
        )
        require(
            self.profile_ttl_days > 0,
            f"EMMA_PROFILE_TTL_DAYS={self.profile_ttl_days}: must be > 0",
        )
        require(
            self.replay_window_days > 0,
            f"EMMA_REPLAY_WINDOW_DAYS={self.replay_window_days}: must be > 0",
        )
        require(
            1 <= self.max_batch_events <= 100_000,
            f"EMMA_MAX_BATCH_EVENTS={self.max_batch_events}: must be 1..100000",
        )
        require(
            self.events_stream_maxlen >= 1,
            f"EMMA_PROFILE_EVENTS_MAXLEN={self.events_stream_maxlen}: must be >= 1",
        )
        require(self.wallet_days > 0, f"EMMA_WALLET_DAYS={self.wallet_days}: must be > 0")
        try:
            ZoneInfo(self.default_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            require(
                False,
                f"EMMA_DEFAULT_TIME_ZONE={self.default_time_zone!r}: unknown time zone",
            )

    @property
    def half_life_s(self) -> float:
        return self.affinity_half_life_days * 86_400.0

    @property
    def replay_window_s(self) -> float:
        return self.replay_window_days * 86_400.0

    @property
    def ttl_s(self) -> int:
        return max(1, round(self.profile_ttl_days * 86_400.0))
