"""Offline evaluation of the decision log: reward join, IPS/SNIPS/DR estimates, candidates."""

from emma.evaluation.estimators import Estimate, Interval, PolicyEstimate, Terms, estimate
from emma.evaluation.join import JoinedEvent, JoinStats, join
from emma.evaluation.offline import EstimateSettings, evaluate
from emma.evaluation.policies import (
    BaselinePolicy,
    LoggingPolicy,
    Policy,
    UniformPolicy,
    VWCandidate,
)
from emma.evaluation.records import LoggedEvent, Outcome, parse_decision, parse_outcome
from emma.evaluation.reward_model import RewardModel, RunningMeans, VWRegression

__all__ = [
    "BaselinePolicy",
    "Estimate",
    "EstimateSettings",
    "Interval",
    "JoinStats",
    "JoinedEvent",
    "LoggedEvent",
    "LoggingPolicy",
    "Outcome",
    "Policy",
    "PolicyEstimate",
    "RewardModel",
    "RunningMeans",
    "Terms",
    "UniformPolicy",
    "VWCandidate",
    "VWRegression",
    "estimate",
    "evaluate",
    "join",
    "parse_decision",
    "parse_outcome",
]
