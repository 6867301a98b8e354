"""`emma evaluate`: off-policy estimates of the live policy, baseline, random and candidates."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import redis

from emma.decision.catalog import CatalogError, load_catalog
from emma.decision.config import DecisionConfig
from emma.evaluation.estimators import Interval
from emma.evaluation.join import JoinedEvent, JoinStats, join
from emma.evaluation.offline import EstimateSettings, evaluate
from emma.evaluation.policies import (
    BaselinePolicy,
    CandidateError,
    LoggingPolicy,
    Policy,
    UniformPolicy,
    VWCandidate,
)
from emma.evaluation.records import LogFormatError
from emma.evaluation.report import document, plot, stats_line, table
from emma.evaluation.reward_model import (
    DEFAULT_REGRESSION_ARGS,
    RewardModel,
    RunningMeans,
    VWRegression,
)
from emma.evaluation.sources import read_joined, read_redis, write_joined
from emma.learner.config import LearnerConfig

# The decision service's settings, and the learner's for those only the learner has (the
# outcome grace); a name both have (reward_window_s) reads the same variable in each.
_DEFAULTS = {
    field.name: field
    for config in (LearnerConfig, DecisionConfig)
    for field in dataclasses.fields(config)
}


def _default(name: str) -> Any:
    """The service's setting: its environment variable, else its default."""
    field = _DEFAULTS[name]
    return os.environ.get(field.metadata["env"], field.default)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="off-policy evaluation of the decision log (IPS, SNIPS, DR)",
        description="Reads the decision log from Redis (or an exported file), joins the "
        "rewards, and estimates the average reward per decision of the live policy, the "
        "catalog's priority baseline, uniform random and candidate VW settings, with "
        "confidence intervals.",
    )
    source = parser.add_argument_group("where the log comes from")
    source.add_argument(
        "--redis-url",
        default=os.environ.get("EMMA_REDIS_URL"),
        help="read the streams of this Redis (env EMMA_REDIS_URL)",
    )
    source.add_argument(
        "--decision-stream",
        default=_default("decision_stream"),
        help="stream of the decision log (env EMMA_DECISION_STREAM, default %(default)s)",
    )
    source.add_argument(
        "--reward-stream",
        default=_default("reward_stream"),
        help="stream of rewards and activations (env EMMA_REWARD_STREAM, default %(default)s)",
    )
    source.add_argument(
        "--input",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="joined DSJSON lines written by --export (repeatable; read before Redis)",
    )
    source.add_argument("--limit", type=int, help="only the newest N decisions of the Redis stream")
    source.add_argument(
        "--export", type=Path, metavar="FILE", help="write the joined log as DSJSON lines"
    )
    joining = parser.add_argument_group("the reward join")
    joining.add_argument(
        "--window-s",
        type=float,
        default=float(_default("reward_window_s")),
        help="seconds after a decision its rewards count (env EMMA_REWARD_WINDOW_S, "
        "default %(default)s)",
    )
    joining.add_argument(
        "--outcome-grace-s",
        type=float,
        default=float(_default("outcome_grace_s")),
        help="seconds of stream time a reward or activation may come before its decision's "
        "entry and still count, as the learner holds it (env EMMA_OUTCOME_GRACE_S, "
        "default %(default)s)",
    )
    joining.add_argument(
        "--default-reward", type=float, default=0.0, help="reward of a decision without any"
    )
    policies = parser.add_argument_group("what is evaluated")
    policies.add_argument(
        "--catalog",
        type=Path,
        default=Path(_default("catalog_path")),
        help="catalog whose priorities make the baseline (env EMMA_CATALOG)",
    )
    policies.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="VW_ARGS",
        help='VW settings to evaluate by progressive validation, e.g. "--cb_explore_adf '
        '--epsilon 0.1 -q UA" (repeatable)',
    )
    policies.add_argument(
        "--reward-model",
        choices=("vw", "means"),
        default="vw",
        help="DR's reward model: a progressive VW regression (default) or per-(offer, "
        "channel) running means",
    )
    policies.add_argument(
        "--reward-model-args",
        default=DEFAULT_REGRESSION_ARGS,
        help="VW arguments of the vw reward model (default %(default)r)",
    )
    output = parser.add_argument_group("the report")
    output.add_argument(
        "--interval",
        choices=[i.value for i in Interval],
        default=Interval.NORMAL.value,
        help="confidence intervals: normal approximation (default) or percentile bootstrap",
    )
    output.add_argument("--confidence", type=float, default=0.95, help="default %(default)s")
    output.add_argument("--bootstrap-samples", type=int, default=500)
    output.add_argument("--json", metavar="FILE", help="write the report as JSON (- for stdout)")
    output.add_argument("--plot", type=Path, metavar="FILE", help="write a PNG of the estimates")
    parser.set_defaults(func=run)


def _load(args: argparse.Namespace) -> tuple[list[JoinedEvent], JoinStats]:
    events: list[JoinedEvent] = []
    for path in args.input:
        events.extend(read_joined(path))
    stats = JoinStats(decisions=len(events), evaluated=len(events))
    stats.rewarded = sum(e.rewarded for e in events)
    if args.redis_url:
        decisions, outcomes = read_redis(
            args.redis_url, args.decision_stream, args.reward_stream, limit=args.limit
        )
        joined, from_redis = join(
            decisions,
            outcomes,
            window_s=args.window_s,
            grace_s=args.outcome_grace_s,
            default_reward=args.default_reward,
        )
        known = {e.event.event_id for e in events}
        fresh = [e for e in joined if e.event.event_id not in known]
        from_redis.duplicate_decisions += len(joined) - len(fresh)
        from_redis.evaluated -= len(joined) - len(fresh)
        events.extend(fresh)
        for field in dataclasses.fields(JoinStats):
            setattr(stats, field.name, getattr(stats, field.name) + getattr(from_redis, field.name))
    return events, stats


def _policies(args: argparse.Namespace, priorities: dict[str, int]) -> list[Policy]:
    policies: list[Policy] = [LoggingPolicy(), BaselinePolicy(priorities), UniformPolicy()]
    names = {p.name for p in policies}
    for number, candidate in enumerate(args.candidate, start=1):
        name = candidate.strip()
        if name in names:
            name = f"{name} #{number}"
        names.add(name)
        policies.append(VWCandidate(candidate, name=name))
    return policies


def _reward_model(args: argparse.Namespace) -> RewardModel:
    if args.reward_model == "means":
        return RunningMeans()
    return VWRegression(args.reward_model_args)


def _check(args: argparse.Namespace) -> str | None:
    if not args.input and not args.redis_url:
        return "give --redis-url (or EMMA_REDIS_URL) and/or --input FILE"
    if not 0 < args.confidence < 1:
        return "--confidence must be between 0 and 1"
    if args.window_s <= 0:
        return "--window-s must be > 0"
    if args.outcome_grace_s < 0:
        return "--outcome-grace-s must be >= 0"
    if args.limit is not None and args.limit < 1:
        return "--limit must be >= 1"
    if args.bootstrap_samples < 10:
        return "--bootstrap-samples must be >= 10"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"emma evaluate: {problem}", file=sys.stderr)
        return 2
    try:
        catalog = load_catalog(args.catalog)
        events, stats = _load(args)
        policies = _policies(args, {o.offer_id: o.priority for o in catalog.offers})
    except (CatalogError, LogFormatError, CandidateError, OSError) as error:
        print(f"emma evaluate: {error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"emma evaluate: Redis {args.redis_url}: {error}", file=sys.stderr)
        return 1
    if args.export:
        count = write_joined(args.export, events)
        print(f"wrote {count} joined decisions to {args.export}", file=sys.stderr)
    # With the JSON on stdout, the human-readable report goes to stderr.
    out = sys.stderr if args.json == "-" else sys.stdout
    print(stats_line(stats), file=out)
    if not events:
        print("emma evaluate: no decisions to evaluate", file=sys.stderr)
        return 1
    settings = EstimateSettings(
        interval=Interval(args.interval),
        confidence=args.confidence,
        bootstrap_samples=args.bootstrap_samples,
    )
    reward_model = _reward_model(args)
    try:
        estimates = evaluate(events, policies, reward_model, settings)
    finally:
        reward_model.close()
        for policy in policies:
            policy.close()
    print(
        f"average reward per decision, {args.confidence:.0%} {settings.interval.value} "
        f"intervals, DR reward model: {reward_model.name}",
        file=out,
    )
    print(table(estimates), file=out)
    report = document(
        estimates,
        stats,
        {
            "window_s": args.window_s,
            "outcome_grace_s": args.outcome_grace_s,
            "default_reward": args.default_reward,
            "interval": settings.interval.value,
            "confidence": args.confidence,
            "reward_model": reward_model.name,
            "catalog": str(args.catalog),
        },
    )
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.plot:
        plot(estimates, args.plot, f"offline evaluation of {stats.evaluated} decisions")
        print(f"plot: {args.plot}", file=out)
    return 0
