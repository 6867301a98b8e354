"""Bandit and learner benchmark: scoring text vs pre-parsed examples, and the learner's rate.

    .venv/bin/python -m bench.learning [--actions 10 50] [--calls 3000] [--updates 3000]
                                       [--json]

Measures, on a model trained on synthetic traffic:

- building the action features: rendering each (offer, channel) every request vs the
  decision service's cache (ActionFeatureCache);
- scoring one decision: VW parsing the whole multi-line text example every request
  (`Workspace.predict(lines)`) vs the service's Model, which parses only the shared
  line and reuses the action examples parsed once;
- the learner's training rate: DSJSON lines parsed by VW, the agreement prediction and
  the update, per decision, and the time to save a snapshot.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import vowpalwabbit

from emma.decision.bandit import Model, save_workspace
from emma.decision.catalog import Offer
from emma.decision.config import DEFAULT_VW_ARGS
from emma.decision.domain import Channel
from emma.decision.eligibility import Action
from emma.decision.features import (
    ActionFeatureCache,
    action_features,
    dsjson_context,
    shared_line,
    vw_lines,
    with_label,
)
from emma.learner.trainer import Agreement, Trainer

CATEGORIES = ("cheese", "wine", "bakery", "coffee", "fruit", "meat", "sweets")


def offers(count: int) -> list[Action]:
    """`count` (offer, channel) actions with catalog-like features."""
    channels = list(Channel)
    actions = []
    for index in range(count):
        offer = Offer(
            offer_id=f"offer-{index}",
            title=f"Offer {index}",
            category=CATEGORIES[index % len(CATEGORIES)],
            channels=(channels[index % len(channels)],),
            products=(f"product-{index}", f"product-{index + 1}"),
            features={"discount": float(5 + index % 30), "kind": "percent off"},
        )
        actions.append(Action(offer, offer.channels[0]))
    return actions


def shared(rng: random.Random) -> dict[str, dict[str, float]]:
    liked = rng.sample(CATEGORIES, 2)
    return {
        "U": {
            "profile=known": 1.0,
            f"aff={liked[0]}": rng.random(),
            f"aff={liked[1]}": rng.random(),
            f"seg=s{rng.randrange(5)}": 1.0,
            f"rfm_r={rng.choice(['week', 'month', 'quarter'])}": 1.0,
        },
        "C": {
            f"daypart={rng.choice(['morning', 'lunch', 'evening'])}": 1.0,
            "season=summer": 1.0,
            "hour": float(rng.randrange(24)),
            f"weekday={rng.randrange(7)}": 1.0,
        },
    }


def timed(call: Callable[[int], object], calls: int) -> dict[str, float]:
    """Per-call latency in microseconds: median and 99th percentile."""
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        call(index)
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return {
        "p50_us": statistics.median(samples),
        "p99_us": samples[int(0.99 * (len(samples) - 1))],
    }


def trained_model(actions: list[Action], rng: random.Random) -> bytes:
    workspace = vowpalwabbit.Workspace(DEFAULT_VW_ARGS)
    per_action = [action_features(a) for a in actions]
    for _ in range(500):
        lines = vw_lines(shared(rng), per_action)
        shown = rng.randrange(len(actions))
        workspace.learn(with_label(lines, shown, -float(shown % 7 == 0), 1 / len(actions)))
    data = save_workspace(workspace)
    workspace.finish()
    return data


def scoring(count: int, calls: int) -> dict[str, Any]:
    rng = random.Random(count)
    actions = offers(count)
    data = trained_model(actions, rng)
    contexts = [shared(rng) for _ in range(256)]

    features = {
        "render_every_request": timed(
            lambda i: vw_lines({}, [action_features(a) for a in actions]), calls
        ),
    }
    cache = ActionFeatureCache()
    features["cached"] = timed(lambda i: [cache.get(a).line for a in actions], calls)

    lines = [cache.get(a).line for a in actions]
    text_model = Model.from_bytes(DEFAULT_VW_ARGS, data, "bench")
    parsed_model = Model.from_bytes(DEFAULT_VW_ARGS, data, "bench")
    text = timed(
        lambda i: text_model.workspace.predict([shared_line(contexts[i % 256]), *lines]), calls
    )
    parsed = timed(lambda i: parsed_model.predict(shared_line(contexts[i % 256]), lines), calls)
    text_model.close()
    parsed_model.close()
    return {
        "actions": count,
        "features": features,
        "predict_text": text,
        "predict_pre_parsed": parsed,
        "speedup_p50": text["p50_us"] / parsed["p50_us"],
    }


def learning(count: int, updates: int) -> dict[str, Any]:
    rng = random.Random(count)
    per_action = [action_features(a) for a in offers(count)]
    trainer = Trainer(DEFAULT_VW_ARGS, Agreement(window=1000, threshold=0.9))
    batch = []
    for index in range(updates):
        chosen = rng.randrange(count)
        order = [chosen, *(i for i in range(count) if i != chosen)]
        line = {
            "_label_cost": 0.0,
            "_label_probability": 1 / count,
            "_label_Action": chosen + 1,
            "_labelIndex": chosen,
            "o": [],
            "Timestamp": "2026-06-15T08:00:00.000Z",
            "Version": "1",
            "EventId": f"e{index}",
            "a": [i + 1 for i in order],
            "c": dsjson_context(shared(rng), per_action),
            "p": [1 / count] * count,
            "VWState": {"m": "bench"},
            "_emma": {"policy": "learner", "baselineIndex": 0, "reasons": []},
        }
        batch.append((line, float(chosen % 7 == 0)))
    started = time.perf_counter()
    trainer.learn_all(batch)
    per_update = (time.perf_counter() - started) / updates * 1e6
    started = time.perf_counter()
    snapshot = trainer.snapshot()
    saved_ms = (time.perf_counter() - started) * 1e3
    trainer.close()
    return {
        "actions": count,
        "learn_us_per_decision": per_update,
        "decisions_per_s": 1e6 / per_update,
        "snapshot_ms": saved_ms,
        "snapshot_bytes": len(snapshot),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = {
        "scoring": [scoring(count, args.calls) for count in args.actions],
        "learning": [learning(count, args.updates) for count in args.actions],
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("scoring one decision (microseconds, p50 / p99)")
    for row in results["scoring"]:
        f, t, p = row["features"], row["predict_text"], row["predict_pre_parsed"]
        rendered = f["render_every_request"]
        print(
            f"  {row['actions']:>3} actions: features rendered {rendered['p50_us']:5.0f}"
            f" / {rendered['p99_us']:5.0f}, cached {f['cached']['p50_us']:4.0f}"
            f" / {f['cached']['p99_us']:4.0f}; VW text {t['p50_us']:6.0f} / {t['p99_us']:6.0f},"
            f" pre-parsed {p['p50_us']:5.0f} / {p['p99_us']:5.0f} ({row['speedup_p50']:.1f}x)"
        )
    print("learner (DSJSON parse + agreement predict + update)")
    for row in results["learning"]:
        print(
            f"  {row['actions']:>3} actions: {row['learn_us_per_decision']:6.0f} us per decision"
            f" ({row['decisions_per_s']:,.0f}/s); snapshot {row['snapshot_ms']:.1f} ms,"
            f" {row['snapshot_bytes']:,} bytes"
        )


if __name__ == "__main__":
    main()
