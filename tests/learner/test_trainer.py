"""The trainer: VW's own DSJSON reader, resumable checkpoints, agreement with the baseline."""

from __future__ import annotations

import json
from typing import Any

import pytest
import vowpalwabbit

from emma.decision.config import DEFAULT_VW_ARGS
from emma.learner.trainer import Agreement, BadLine, Trainer, labelled

from .conftest import ACTIONS, SHARED


def line(event: int, chosen: int, baseline: int | None = 0, **extra: Any) -> dict[str, Any]:
    order = [chosen, *(i for i in range(len(ACTIONS)) if i != chosen)]
    logged: dict[str, Any] = {
        "_label_cost": 0.0,
        "_label_probability": 1 / 3,
        "_label_Action": chosen + 1,
        "_labelIndex": chosen,
        "o": [],
        "Timestamp": "2026-06-15T08:00:00.000Z",
        "Version": "1",
        "EventId": f"e{event}",
        "a": [i + 1 for i in order],
        "c": {**SHARED, "_multi": ACTIONS},
        "p": [1 / 3] * 3,
        "VWState": {"m": "cold"},
        **extra,
    }
    if baseline is not None:
        logged["_emma"] = {"policy": "learner", "baselineIndex": baseline, "reasons": []}
    return logged


def history(count: int) -> list[tuple[dict[str, Any], float]]:
    return [(line(i, i % 3), 1.0 if i % 3 == 2 else 0.0) for i in range(count)]


def agreement() -> Agreement:
    return Agreement(window=10, threshold=0.8)


def scores(trainer: Trainer) -> list[float]:
    examples = trainer.workspace.parse(json.dumps(line(999, 0)))
    pmf = trainer.workspace.predict(examples)
    trainer.workspace.finish_example(examples)
    return [float(p) for p in pmf]


def test_labelling_sets_the_cost_and_unskips_an_activated_decision() -> None:
    logged = line(1, 2, _skipLearn=True)
    learnable = labelled(logged, 2.5)
    assert learnable["_label_cost"] == -2.5 and "_skipLearn" not in learnable
    assert logged["_skipLearn"] is True and logged["_label_cost"] == 0.0  # untouched


def test_the_trainer_learns_exactly_what_vw_dsjson_learns() -> None:
    trainer = Trainer(DEFAULT_VW_ARGS, agreement())
    reference = vowpalwabbit.Workspace(DEFAULT_VW_ARGS + " --dsjson")
    for logged, reward in history(60):
        trainer.learn(logged, reward)
        reference.learn(json.dumps(labelled(logged, reward)))
    examples = reference.parse(json.dumps(line(999, 0)))
    expected = reference.predict(examples)
    reference.finish_example(examples)
    assert scores(trainer) == pytest.approx(expected, abs=1e-7)
    assert max(range(3), key=lambda i: expected[i]) == 2
    assert trainer.updates == 60
    reference.finish()
    trainer.close()


def test_a_resumed_checkpoint_learns_on_as_if_never_interrupted() -> None:
    whole = Trainer(DEFAULT_VW_ARGS, agreement())
    first = Trainer(DEFAULT_VW_ARGS, agreement())
    for logged, reward in history(40):
        whole.learn(logged, reward)
        first.learn(logged, reward)
    resumed = Trainer(DEFAULT_VW_ARGS, agreement(), first.snapshot())
    for logged, reward in history(80)[40:]:
        whole.learn(logged, reward)
        resumed.learn(logged, reward)
    assert scores(resumed) == pytest.approx(scores(whole), abs=1e-7)
    for trainer in (whole, first, resumed):
        trainer.close()


def test_lines_vw_cannot_learn_from_are_skipped_and_counted() -> None:
    trainer = Trainer(DEFAULT_VW_ARGS, agreement())
    single = line(1, 0)
    single["c"] = {**SHARED, "_multi": ACTIONS[:1]}
    single["a"], single["p"] = [1], [1.0]
    with pytest.raises(BadLine):
        trainer.learn(single, 1.0)
    skipped = trainer.learn_all([(single, 1.0), (line(2, 1), 1.0)])
    assert (skipped, trainer.updates) == (1, 1)
    trainer.close()


def test_agreement_is_measured_before_learning_and_graduation_sticks() -> None:
    trainer = Trainer(DEFAULT_VW_ARGS, agreement())
    # The baseline chooses action 1, and it pays: the learner comes to prefer it too.
    for event in range(30):
        chosen = 1 if event % 5 else (event // 5) % 3
        trainer.learn(line(event, chosen, baseline=1), 1.0 if chosen == 1 else 0.0)
    assert trainer.agreement.state()["measured"] == 10  # the window's latest decisions
    assert trainer.agreement.rate >= 0.8 and trainer.agreement.graduated
    # Then the baseline's choice stops paying: agreement falls, graduation stays.
    for event in range(30, 60):
        trainer.learn(line(event, 1, baseline=1), -1.0)
    assert trainer.agreement.rate < 0.8 and trainer.agreement.graduated
    restored = agreement()
    restored.restore(trainer.agreement.state())
    assert restored.state() == trainer.agreement.state()
    trainer.close()


def test_a_cold_model_does_not_agree_by_accident() -> None:
    tally = agreement()
    trainer = Trainer(DEFAULT_VW_ARGS, tally)
    trainer.learn(line(1, 0, baseline=0), 0.0)
    assert tally.state()["recent"] == "0"  # all actions tie: no clear top choice
    trainer.learn(line(2, 0, baseline=None), 0.0)
    assert tally.state()["measured"] == 1  # no baseline logged, nothing measured
    trainer.close()
