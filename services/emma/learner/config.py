"""Configuration of the learner, from environment variables and flags."""

from __future__ import annotations

import dataclasses

from emma.decision.bandit import ExplorationBounds, check_vw_args
from emma.decision.config import DEFAULT_REWARD_WINDOW_S, DEFAULT_VW_ARGS
from emma.runtime.config import check_port, require, setting

AGGREGATIONS = ("first", "sum")


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """The learner: joins rewards to decisions, trains VW, publishes model snapshots."""

    host: str = setting("127.0.0.1", "EMMA_LEARNER_HOST", "interface of the health endpoint")
    port: int = setting(
        50054, "EMMA_LEARNER_PORT", "port of the health endpoint; 0 picks a free one"
    )
    metrics_port: int = setting(
        9464, "EMMA_LEARNER_METRICS_PORT", "port serving Prometheus /metrics; 0: off"
    )
    shutdown_grace_s: float = setting(
        5.0, "EMMA_SHUTDOWN_GRACE_S", "seconds in-flight calls get to finish on shutdown"
    )
    redis_url: str = setting("redis://127.0.0.1:6379/0", "EMMA_REDIS_URL", "Redis of the logs")
    decision_stream: str = setting(
        "emma:decisions", "EMMA_DECISION_STREAM", "Redis stream of the decision log"
    )
    reward_stream: str = setting("emma:rewards", "EMMA_REWARD_STREAM", "Redis stream of rewards")
    model_key: str = setting(
        "emma:model", "EMMA_MODEL_KEY", "Redis hash of the published model and its checkpoint"
    )
    group: str = setting(
        "emma-learner", "EMMA_LEARNER_GROUP", "consumer group of the learner on both streams"
    )
    consumer: str = setting(
        "learner", "EMMA_LEARNER_CONSUMER", "consumer name of this learner in the group"
    )
    vw_args: str = setting(DEFAULT_VW_ARGS, "EMMA_VW_ARGS", "Vowpal Wabbit arguments")
    epsilon_max: float = setting(0.2, "EMMA_EPSILON_MAX", "highest --epsilon EMMA_VW_ARGS may set")
    gamma_scale_min: float = setting(
        1.0, "EMMA_GAMMA_SCALE_MIN", "lowest SquareCB --gamma_scale EMMA_VW_ARGS may set"
    )
    reward_window_s: float = setting(
        DEFAULT_REWARD_WINDOW_S,
        "EMMA_REWARD_WINDOW_S",
        "seconds a decision can be activated and rewarded after it was made",
    )
    default_reward: float = setting(
        0.0, "EMMA_DEFAULT_REWARD", "reward learned for a decision without any in its window"
    )
    # `sum` by default: with `first` a click is learned at once and a miss only when its window
    # closes, so the model hears a decision's good news before its bad news (docs/learning.md).
    aggregation: str = setting(
        "sum",
        "EMMA_REWARD_AGGREGATION",
        "first: learn at a decision's first reward; sum: learn the window's sum at its end",
        choices=AGGREGATIONS,
    )
    # A decision written late from a replica's buffer (emma.decision.log_buffer) may reach its
    # stream after an outcome another replica logged: the outcome waits this long for it.
    outcome_grace_s: float = setting(
        10.0,
        "EMMA_OUTCOME_GRACE_S",
        "seconds of stream time an outcome of a not yet logged event id waits for its decision's "
        "entry before it counts as unknown; 0: not at all",
    )
    held_outcomes_max: int = setting(
        10_000,
        "EMMA_HELD_OUTCOMES_MAX",
        "outcomes held for their decision's entry at most; beyond, the oldest count as unknown",
    )
    publish_interval_s: float = setting(
        5.0, "EMMA_LEARNER_PUBLISH_S", "most seconds between two published model versions"
    )
    publish_updates: int = setting(
        1000, "EMMA_LEARNER_PUBLISH_UPDATES", "updates after which a model is published early"
    )
    batch: int = setting(500, "EMMA_LEARNER_BATCH", "stream entries read per round trip")
    block_ms: int = setting(
        200, "EMMA_LEARNER_BLOCK_MS", "milliseconds a read waits for new rewards when idle"
    )
    lease_s: float = setting(
        10.0, "EMMA_LEARNER_LEASE_S", "seconds the active learner's lease lasts unless renewed"
    )
    apprentice_threshold: float = setting(
        0.9,
        "EMMA_APPRENTICE_THRESHOLD",
        "agreement with the baseline at which apprentice replicas switch to the learner",
    )
    apprentice_window: int = setting(
        1000, "EMMA_APPRENTICE_WINDOW", "latest decisions over which agreement is measured"
    )

    def __post_init__(self) -> None:
        check_port(self.port, "EMMA_LEARNER_PORT")
        check_port(self.metrics_port, "EMMA_LEARNER_METRICS_PORT")
        require(self.shutdown_grace_s >= 0, "EMMA_SHUTDOWN_GRACE_S: must be >= 0")
        require(bool(self.decision_stream), "EMMA_DECISION_STREAM: must not be empty")
        require(bool(self.reward_stream), "EMMA_REWARD_STREAM: must not be empty")
        require(bool(self.model_key), "EMMA_MODEL_KEY: must not be empty")
        require(bool(self.group), "EMMA_LEARNER_GROUP: must not be empty")
        require(bool(self.consumer), "EMMA_LEARNER_CONSUMER: must not be empty")
        require(self.reward_window_s > 0, "EMMA_REWARD_WINDOW_S: must be > 0")
        require(self.outcome_grace_s >= 0, "EMMA_OUTCOME_GRACE_S: must be >= 0")
        require(self.held_outcomes_max >= 1, "EMMA_HELD_OUTCOMES_MAX: must be >= 1")
        require(self.publish_interval_s > 0, "EMMA_LEARNER_PUBLISH_S: must be > 0")
        require(self.publish_updates >= 1, "EMMA_LEARNER_PUBLISH_UPDATES: must be >= 1")
        require(self.batch >= 1, "EMMA_LEARNER_BATCH: must be >= 1")
        require(self.block_ms >= 1, "EMMA_LEARNER_BLOCK_MS: must be >= 1")
        # The loop renews the lease once a third of its term has passed, checked before
        # every read, and a read may block for block_ms.
        require(
            self.lease_s * 1000 > 2 * self.block_ms,
            "EMMA_LEARNER_LEASE_S: must be more than twice EMMA_LEARNER_BLOCK_MS",
        )
        require(
            0 < self.apprentice_threshold <= 1,
            f"EMMA_APPRENTICE_THRESHOLD={self.apprentice_threshold}: must be in (0, 1]",
        )
        require(self.apprentice_window >= 1, "EMMA_APPRENTICE_WINDOW: must be >= 1")
        require(self.epsilon_max >= 0, "EMMA_EPSILON_MAX: must be >= 0")
        require(self.gamma_scale_min >= 0, "EMMA_GAMMA_SCALE_MIN: must be >= 0")
        problem = check_vw_args(self.vw_args, self.exploration_bounds)
        require(problem is None, f"EMMA_VW_ARGS={self.vw_args!r}: {problem}")

    @property
    def exploration_bounds(self) -> ExplorationBounds:
        return ExplorationBounds(epsilon_max=self.epsilon_max, gamma_scale_min=self.gamma_scale_min)
