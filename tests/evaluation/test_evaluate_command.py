"""`emma evaluate` end to end: the decision service's DecisionStore writes to a real Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import vowpalwabbit

from emma.cli.main import main
from emma.decision.decision_log import DecisionStore, LoggedDecision
from emma.decision.features import dsjson_context
from emma.runtime.redis_client import connect_redis

from . import synthetic

CATALOG = """
offers:
  - {id: o0, title: Zero, category: c0, channels: [in_app], priority: 2}
  - {id: o1, title: One, category: c1, channels: [in_app], priority: 3}
  - {id: o2, title: Two, category: c2, channels: [in_app], priority: 1}
  - {id: o3, title: Three, category: c3, channels: [in_app], priority: 4}
  - {id: fb, title: Fallback, category: loyalty, channels: [in_app], fallback: true}
"""
EVENTS = 2000


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    return path


def logged(
    event_id: str, kind: int, index: int, at: datetime, deferred: bool = False
) -> LoggedDecision:
    return LoggedDecision(
        event_id=event_id,
        timestamp=at,
        context=dsjson_context(synthetic.shared_of(kind), synthetic.actions()),
        pmf=list(synthetic.LOGGING[kind]),
        index=index,
        model_version="online-3",
        deferred=deferred,
        offer_id=synthetic.OFFERS[index],
        channel="in_app",
        customer="p-x",
        fallback=False,
    )


async def write_log(redis_url: str) -> tuple[list[float], int]:
    """Decisions, rewards (some retried) and activations through the service's own
    DecisionStore; the rewards per evaluated decision and how many were retried."""
    client = connect_redis(redis_url)
    store = DecisionStore(client, "emma:decisions", "emma:rewards", 100_000, 3600.0)
    rng = np.random.default_rng(4)
    rewards = []
    retried = 0
    try:
        for i in range(EVENTS):
            kind = int(rng.integers(0, 3))
            index = int(rng.choice(4, p=synthetic.LOGGING[kind]))
            at = synthetic.START + timedelta(seconds=10 * i)
            deferred = i % 10 == 0
            await store.append(logged(f"e{i}", kind, index, at, deferred))
            if deferred and i % 20 == 0:
                continue  # shown never: left out of the evaluation
            if deferred:
                await store.activate(f"e{i}", at + timedelta(seconds=1))
            reward = float(rng.random() < synthetic.MU[kind, index])
            rewards.append(reward)
            if reward:
                # Every seventh Reward is retried: its idempotency key makes it count once.
                for _ in range(2 if i % 7 == 0 else 1):
                    clicked = at + timedelta(seconds=2)
                    await store.reward(f"e{i}", 1.0, "click", clicked, key=f"click:e{i}")
                retried += i % 7 == 0
        await store.reward("unknown", 1.0, "click", synthetic.START)
    finally:
        await client.aclose()
    return rewards, retried


async def test_evaluate_reads_joins_estimates_exports_and_plots(
    redis_url: str, catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewards, retried = await write_log(redis_url)
    report_path, plot_path, export = tmp_path / "r.json", tmp_path / "r.png", tmp_path / "log.json"
    code = main(
        [
            "evaluate",
            "--redis-url", redis_url,
            "--catalog", str(catalog),
            "--candidate", "--cb_explore_adf --epsilon 0.05 -q UA",
            "--json", str(report_path),
            "--plot", str(plot_path),
            "--export", str(export),
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert f"{len(rewards)} decisions evaluated of {EVENTS} logged" in out
    assert "100 deferred and never activated" in out
    assert "1 for unknown decisions" in out
    assert retried > 0 and f"{retried} repeated rewards" in out
    for name in ("live", "baseline", "uniform", "--cb_explore_adf --epsilon 0.05 -q UA"):
        assert name in out

    report = json.loads(report_path.read_text())
    policies = {p["policy"]: p for p in report["policies"]}
    live = policies["live"]
    assert live["events"] == len(rewards)
    assert live["ips"]["value"] == pytest.approx(np.mean(rewards))
    truths = {"baseline": synthetic.baseline_value(), "uniform": synthetic.uniform_value()}
    for policy, truth in truths.items():
        for estimator in ("ips", "snips", "dr"):
            interval = policies[policy][estimator]
            assert interval["low"] <= truth <= interval["high"], (policy, estimator)
    candidate = policies["--cb_explore_adf --epsilon 0.05 -q UA"]["dr"]
    assert candidate["low"] > policies["uniform"]["dr"]["high"]
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The export is DSJSON that VW reads, and evaluating it again gives the same numbers.
    lines = export.read_text().splitlines()
    assert len(lines) == len(rewards)
    vw = vowpalwabbit.Workspace("--cb_explore_adf --dsjson --quiet")
    for line in lines[:50]:
        examples = vw.parse(line)
        vw.learn(examples)
        vw.finish_example(examples)
    vw.finish()
    again = tmp_path / "again.json"
    assert (
        main(["evaluate", "--input", str(export), "--catalog", str(catalog), "--json", str(again)])
        == 0
    )
    repeated = {p["policy"]: p for p in json.loads(again.read_text())["policies"]}
    for policy in ("live", "baseline", "uniform"):
        for estimator in ("ips", "snips", "dr"):
            assert repeated[policy][estimator]["value"] == pytest.approx(
                policies[policy][estimator]["value"]
            )


async def test_json_on_stdout_keeps_the_table_off_it(
    redis_url: str, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_log(redis_url)
    code = main(
        ["evaluate", "--redis-url", redis_url, "--catalog", str(catalog), "--json", "-",
         "--interval", "bootstrap", "--bootstrap-samples", "50", "--limit", "500"]
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["settings"]["interval"] == "bootstrap"
    assert report["join"]["decisions"] == 500
    assert "baseline" in captured.err


async def test_a_reward_before_its_decision_counts_only_within_the_outcome_grace(
    redis_url: str,
    catalog: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the learner holds it: the grace is stream time, between the two entries."""
    client = connect_redis(redis_url)
    store = DecisionStore(client, "emma:decisions", "emma:rewards", 100_000, 3600.0)
    try:
        # Another replica logged the reward; the decision came later, from a buffer.
        await store.reward("early", 1.0, "click", synthetic.START)
        await asyncio.sleep(0.3)
        await store.append(logged("early", 0, 1, synthetic.START))
        await store.append(logged("plain", 1, 2, synthetic.START))
    finally:
        await client.aclose()
    args = ["evaluate", "--redis-url", redis_url, "--catalog", str(catalog)]
    args += ["--reward-model", "means", "--json", "-"]

    assert main([*args, "--outcome-grace-s", "0.1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["join"]["rewarded"], report["join"]["unknown_outcomes"]) == (0, 1)

    monkeypatch.setenv("EMMA_OUTCOME_GRACE_S", "5")
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["join"]["rewarded"], report["join"]["unknown_outcomes"]) == (1, 0)
    assert report["settings"]["outcome_grace_s"] == 5.0

    assert main([*args, "--outcome-grace-s", "-1"]) == 2
    assert "--outcome-grace-s" in capsys.readouterr().err


def test_missing_sources_and_bad_input_are_reported(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--catalog", str(catalog)]) == 2
    assert "--redis-url" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('{"EventId": "x"}\n')
    assert main(["evaluate", "--input", str(broken), "--catalog", str(catalog)]) == 1
    assert "broken.json:1" in capsys.readouterr().err
    good = tmp_path / "good.json"
    good.write_text(json.dumps(synthetic.decision_line("e", 0, 1)) + "\n")
    args = ["evaluate", "--input", str(good), "--catalog", str(catalog)]
    assert main([*args, "--candidate=--cb_explore"]) == 1
    assert "needs --cb_explore_adf" in capsys.readouterr().err
