"""Configuration of the decision service, from environment variables and flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emma.decision.bandit import ExplorationBounds, PolicyMode, check_vw_args
from emma.runtime.config import check_port, require, setting

# The demo catalog ships inside the package, so a bare `python -m emma.decision` works.
DEFAULT_CATALOG = Path(__file__).resolve().parent.parent / "demo" / "catalog.yaml"

# SquareCB explores in proportion to the score gap; the interactions cross the shared
# namespaces (U user, C context) with the action ones (A offer, H channel), and the context
# with M, how the customer matches the action (docs/learning.md).
DEFAULT_VW_ARGS = (
    "--cb_explore_adf --squarecb --gamma_scale 10 -q UA -q UH -q CA -q CH -q CM --quiet"
)
# An hour: clicks, opens and same-visit redemptions arrive within it, while a decision
# without an outcome is learned as "no reward" an hour later rather than a week later,
# and the learner's open decisions stay bounded (see docs/learning.md).
DEFAULT_REWARD_WINDOW_S = 3600.0
# In process by default: a gRPC hop costs more here than reading a profile or resolving a
# context does (docs/performance.md); `services` keeps the profile store's credentials out
# of the decision service.
DEPENDENCIES = ("in-process", "services")


@dataclasses.dataclass(frozen=True)
class DecisionConfig:
    """The decision service: a contextual bandit over offer x channel."""

    host: str = setting("127.0.0.1", "EMMA_DECISION_HOST", "interface to listen on")
    port: int = setting(50051, "EMMA_DECISION_PORT", "port to listen on; 0 picks a free one")
    metrics_port: int = setting(
        9461, "EMMA_DECISION_METRICS_PORT", "port serving Prometheus /metrics; 0: off"
    )
    workers: int = setting(
        1,
        "EMMA_DECISION_WORKERS",
        "processes serving the port together (SO_REUSEPORT); 1: a single process",
    )
    shutdown_grace_s: float = setting(
        5.0, "EMMA_SHUTDOWN_GRACE_S", "seconds in-flight calls get to finish on shutdown"
    )
    redis_url: str = setting("redis://127.0.0.1:6379/0", "EMMA_REDIS_URL", "Redis for the logs")
    dependencies: str = setting(
        "in-process",
        "EMMA_DECISION_DEPENDENCIES",
        "where Decide gets profiles and context: in-process (the profile store and the context "
        "data, read with the profile and context services' own code and EMMA_* settings) or "
        "services (GetProfile and Resolve over gRPC)",
    )
    profile_redis_url: str = setting(
        "",
        "EMMA_PROFILE_REDIS_URL",
        "Redis holding profiles, read in process (redis+cluster:// for a cluster); "
        "empty: EMMA_REDIS_URL",
    )
    profile_addr: str = setting("127.0.0.1:50052", "EMMA_PROFILE_ADDR", "profile service address")
    context_addr: str = setting("127.0.0.1:50053", "EMMA_CONTEXT_ADDR", "context service address")
    catalog_path: Path = setting(  # noqa: RUF009 - a Path is immutable
        DEFAULT_CATALOG, "EMMA_CATALOG", "offer catalog YAML file"
    )
    budget_ms: float = setting(
        50.0, "EMMA_DECISION_BUDGET_MS", "default latency budget of a Decide, in milliseconds"
    )
    vw_args: str = setting(DEFAULT_VW_ARGS, "EMMA_VW_ARGS", "Vowpal Wabbit arguments")
    max_actions: int = setting(
        50, "EMMA_MAX_ACTIONS", "most (offer, channel) actions the model scores per decision"
    )
    fallback_offer_id: str = setting(
        "", "EMMA_FALLBACK_OFFER", "fallback offer id; the catalog's `fallback: true` when empty"
    )
    decision_stream: str = setting(
        "emma:decisions", "EMMA_DECISION_STREAM", "Redis stream of the decision log"
    )
    reward_stream: str = setting("emma:rewards", "EMMA_REWARD_STREAM", "Redis stream of rewards")
    stream_maxlen: int = setting(
        1_000_000, "EMMA_STREAM_MAXLEN", "approximate length the streams are trimmed to"
    )
    reward_window_s: float = setting(
        DEFAULT_REWARD_WINDOW_S,
        "EMMA_REWARD_WINDOW_S",
        "seconds a decision can be activated and rewarded after it was made",
    )
    policy_mode: str = setting(
        "learner",
        "EMMA_POLICY_MODE",
        "who chooses: learner, baseline (catalog priority) or apprentice",
        choices=tuple(PolicyMode),
    )
    exploration_floor: float = setting(
        0.01, "EMMA_EXPLORATION_FLOOR", "share of each decision's odds spread over all actions"
    )
    epsilon_max: float = setting(0.2, "EMMA_EPSILON_MAX", "highest --epsilon EMMA_VW_ARGS may set")
    gamma_scale_min: float = setting(
        1.0, "EMMA_GAMMA_SCALE_MIN", "lowest SquareCB --gamma_scale EMMA_VW_ARGS may set"
    )
    model_key: str = setting(
        "emma:model", "EMMA_MODEL_KEY", "Redis hash of the published model and its checkpoint"
    )
    model_poll_s: float = setting(
        1.0, "EMMA_MODEL_POLL_S", "seconds between two checks for a newly published model"
    )
    default_time_zone: str = setting(
        "Europe/Berlin", "EMMA_DEFAULT_TIME_ZONE", "zone of the local fallback context"
    )
    decide_reserve_ms: float = setting(
        3.0,
        "EMMA_DECIDE_RESERVE_MS",
        "least part of a Decide's budget kept back from profile and context for deciding",
    )
    spool_dir: str = setting(
        "",
        "EMMA_DECISION_SPOOL_DIR",
        "directory where log entries and outcomes held for Redis are also written, so that a "
        "killed replica's successor writes them; one per replica; empty: memory only",
    )
    shed_lag_ms: float = setting(
        200.0,
        "EMMA_DECISION_SHED_LAG_MS",
        "answer the fallback at once while the event loop runs this far behind "
        "(overload); 0: never",
    )
    queue_target_ms: float = setting(
        5.0,
        "EMMA_DECISION_QUEUE_TARGET_MS",
        "while every call has waited longer than this before its handler for 100 ms on end "
        "(a standing queue), calls that waited longer (or a tenth of their budget, if more) "
        "get the fallback at once; otherwise "
        "only calls that waited their whole budget do; 0: only those",
    )
    log_timeout_ms: float = setting(
        2.0,
        "EMMA_DECISION_LOG_TIMEOUT_MS",
        "least time a decision log write may take when the budget is spent (then it is buffered)",
    )
    log_buffer_entries: int = setting(
        10_000,
        "EMMA_DECISION_LOG_BUFFER",
        "decision-log entries kept in memory while Redis does not answer; 0: none",
    )
    outcome_buffer_entries: int = setting(
        10_000,
        "EMMA_OUTCOME_BUFFER",
        "activations and keyed rewards held in memory while Redis does not answer; 0: none",
    )
    catalog_poll_s: float = setting(
        1.0,
        "EMMA_CATALOG_POLL_S",
        "seconds between checks of the catalog file for changes; 0 turns reloading off",
    )
    contact_key_prefix: str = setting(
        "emma:contacts",
        "EMMA_CONTACT_KEY_PREFIX",
        "prefix of the Redis keys holding contact records for frequency caps",
    )
    profile_events_stream: str = setting(
        "emma:profile-events",
        "EMMA_PROFILE_EVENTS_STREAM",
        "profile-events stream whose erasures delete contact records; empty: off",
    )
    erasure_group: str = setting(
        "emma-decision-erasure",
        "EMMA_ERASURE_GROUP",
        "consumer group of the decision replicas on the profile-events stream",
    )
    erasure_claim_idle_s: float = setting(
        30.0,
        "EMMA_ERASURE_CLAIM_IDLE_S",
        "seconds an erasure stays unacknowledged before another replica claims it",
    )

    context_cache_entries: int = setting(
        4096,
        "EMMA_CONTEXT_CACHE_ENTRIES",
        "contexts kept by store, touchpoint, device and minute; 0 calls Resolve every time",
    )

    def __post_init__(self) -> None:
        check_port(self.port, "EMMA_DECISION_PORT")
        check_port(self.metrics_port, "EMMA_DECISION_METRICS_PORT")
        require(1 <= self.workers <= 64, f"EMMA_DECISION_WORKERS={self.workers}: must be 1..64")
        require(self.context_cache_entries >= 0, "EMMA_CONTEXT_CACHE_ENTRIES: must be >= 0")
        require(self.shutdown_grace_s >= 0, "EMMA_SHUTDOWN_GRACE_S: must be >= 0")
        require(self.budget_ms > 0, f"EMMA_DECISION_BUDGET_MS={self.budget_ms}: must be > 0")
        require(self.max_actions >= 1, f"EMMA_MAX_ACTIONS={self.max_actions}: must be >= 1")
        require(self.stream_maxlen >= 1, "EMMA_STREAM_MAXLEN: must be >= 1")
        require(self.reward_window_s > 0, "EMMA_REWARD_WINDOW_S: must be > 0")
        require(self.model_poll_s > 0, "EMMA_MODEL_POLL_S: must be > 0")
        require(bool(self.model_key), "EMMA_MODEL_KEY: must not be empty")
        require(self.epsilon_max >= 0, "EMMA_EPSILON_MAX: must be >= 0")
        require(self.gamma_scale_min >= 0, "EMMA_GAMMA_SCALE_MIN: must be >= 0")
        require(
            0 <= self.exploration_floor <= min(1.0, self.epsilon_max),
            f"EMMA_EXPLORATION_FLOOR={self.exploration_floor}: must be in [0, EMMA_EPSILON_MAX]",
        )
        require(self.log_timeout_ms > 0, "EMMA_DECISION_LOG_TIMEOUT_MS: must be > 0")
        require(self.decide_reserve_ms >= 0, "EMMA_DECIDE_RESERVE_MS: must be >= 0")
        require(self.shed_lag_ms >= 0, "EMMA_DECISION_SHED_LAG_MS: must be >= 0")
        require(self.queue_target_ms >= 0, "EMMA_DECISION_QUEUE_TARGET_MS: must be >= 0")
        require(self.log_buffer_entries >= 0, "EMMA_DECISION_LOG_BUFFER: must be >= 0")
        require(self.outcome_buffer_entries >= 0, "EMMA_OUTCOME_BUFFER: must be >= 0")
        require(self.catalog_poll_s >= 0, "EMMA_CATALOG_POLL_S: must be >= 0")
        require(bool(self.contact_key_prefix), "EMMA_CONTACT_KEY_PREFIX: must not be empty")
        require(bool(self.erasure_group), "EMMA_ERASURE_GROUP: must not be empty")
        require(self.erasure_claim_idle_s > 0, "EMMA_ERASURE_CLAIM_IDLE_S: must be > 0")
        require(
            self.dependencies in DEPENDENCIES,
            f"EMMA_DECISION_DEPENDENCIES={self.dependencies!r}: expected one of "
            + ", ".join(DEPENDENCIES),
        )
        require(
            self.profile_redis_url == "" or "://" in self.profile_redis_url,
            f"EMMA_PROFILE_REDIS_URL={self.profile_redis_url!r}: expected a redis:// URL",
        )
        require(bool(self.profile_addr.strip()), "EMMA_PROFILE_ADDR: must not be empty")
        require(bool(self.context_addr.strip()), "EMMA_CONTEXT_ADDR: must not be empty")
        require(bool(self.decision_stream), "EMMA_DECISION_STREAM: must not be empty")
        require(bool(self.reward_stream), "EMMA_REWARD_STREAM: must not be empty")
        problem = check_vw_args(self.vw_args, self.exploration_bounds)
        require(problem is None, f"EMMA_VW_ARGS={self.vw_args!r}: {problem}")
        try:
            ZoneInfo(self.default_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            require(False, f"EMMA_DEFAULT_TIME_ZONE={self.default_time_zone!r}: unknown zone")

    @property
    def profile_store_url(self) -> str:
        return self.profile_redis_url or self.redis_url

    @property
    def exploration_bounds(self) -> ExplorationBounds:
        return ExplorationBounds(epsilon_max=self.epsilon_max, gamma_scale_min=self.gamma_scale_min)
