"""The bandit: deterministic sampling from the event id, and learning that moves the pmf."""

from __future__ import annotations

import collections
import uuid

import pytest

from emma.decision.bandit import Bandit, ModelError, sample_index
from emma.decision.config import DEFAULT_VW_ARGS

LINES = [
    "shared |U profile=known aff=cheese:0.8 |C daypart=morning season=summer",
    "|A offer=emmentaler-20 cat=cheese |H ch=receipt",
    "|A offer=gouda-2for1 cat=cheese |H ch=store_screen",
    "|A offer=brezel-coffee-morning cat=bakery |H ch=cashier_prompt",
]


def test_same_event_id_and_pmf_give_the_same_choice() -> None:
    pmf = [0.2, 0.5, 0.3]
    for _ in range(20):
        event_id = uuid.uuid4().hex
        assert sample_index(pmf, event_id) == sample_index(list(pmf), event_id)


def test_sampling_follows_the_pmf() -> None:
    pmf = [0.1, 0.6, 0.3]
    counts = collections.Counter(sample_index(pmf, f"event-{i}") for i in range(6000))
    for index, probability in enumerate(pmf):
        assert counts[index] / 6000 == pytest.approx(probability, abs=0.03)
    assert sample_index([0.0, 1.0, 0.0], "any") == 1


def test_same_model_replays_the_same_decision() -> None:
    first, second = Bandit(DEFAULT_VW_ARGS), Bandit(DEFAULT_VW_ARGS)
    for bandit in (first, second):
        bandit.learn(LINES, 1, -1.0, 1 / 3)
    event_id = uuid.uuid4().hex
    pmf = first.predict(LINES)
    assert pmf == second.predict(LINES)
    assert sample_index(pmf, event_id) == sample_index(second.predict(LINES), event_id)


def test_learning_shifts_the_pmf_toward_the_rewarded_action() -> None:
    bandit = Bandit(DEFAULT_VW_ARGS)
    before = bandit.predict(LINES)
    assert before == pytest.approx([1 / 3] * 3, abs=1e-6)
    assert bandit.model_version == "online-0"
    for _ in range(10):
        bandit.learn(LINES, 2, -1.0, 1 / 3)  # rewarded
        bandit.learn(LINES, 0, 0.0, 1 / 3)  # shown, nothing happened
    after = bandit.predict(LINES)
    assert after[2] > 0.8
    assert after[2] == max(after)
    assert sum(after) == pytest.approx(1.0)
    assert bandit.model_version == "online-20"


def test_invalid_examples_raise_model_error_and_learn_checks_its_label() -> None:
    bandit = Bandit(DEFAULT_VW_ARGS)
    with pytest.raises(ModelError):
        bandit.predict(["shared |U a"])  # no action: VW returns nothing to choose from
    with pytest.raises(ValueError, match="index"):
        bandit.learn(LINES, 3, -1.0, 0.5)
    with pytest.raises(ValueError, match="probability"):
        bandit.learn(LINES, 0, -1.0, 0.0)
