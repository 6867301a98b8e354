"""The bandit: pre-parsed examples, deterministic draws, policy modes and exploration bounds."""

from __future__ import annotations

import collections
import uuid

import pytest
import vowpalwabbit

from emma.decision.bandit import (
    BASELINE_VERSION,
    COLD_VERSION,
    Apprenticeship,
    Bandit,
    ExplorationBounds,
    Model,
    ModelError,
    PolicyMode,
    baseline_index,
    check_vw_args,
    greedy_index,
    sample_index,
    save_workspace,
    with_floor,
)
from emma.decision.config import DEFAULT_VW_ARGS
from emma.decision.features import with_label

SHARED = [
    "shared |U profile=known aff=cheese:0.8 |C daypart=morning season=summer",
    "shared |U profile=known aff=wine:0.6 |C daypart=evening season=summer",
    "shared |U profile=anonymous |C daypart=lunch season=winter hour:12",
]
ACTIONS = [
    "|A offer=emmentaler-20 cat=cheese |H ch=receipt",
    "|A offer=gouda-2for1 cat=cheese |H ch=store_screen",
    "|A offer=brezel-coffee-morning cat=bakery |H ch=cashier_prompt",
    "|A offer=riesling-case cat=wine discount:15 |H ch=receipt",
]


def trained_bytes(rewarded: int = 2, rounds: int = 30) -> bytes:
    """A model taught that action `rewarded` pays for the first shared line."""
    workspace = vowpalwabbit.Workspace(DEFAULT_VW_ARGS)
    for round_ in range(rounds):
        shown = round_ % len(ACTIONS)
        cost = -1.0 if shown == rewarded else 0.0
        workspace.learn(with_label([SHARED[0], *ACTIONS], shown, cost, 1 / len(ACTIONS)))
    data = save_workspace(workspace)
    workspace.finish()
    return data


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


def test_pre_parsed_action_examples_predict_exactly_like_text() -> None:
    data = trained_bytes()
    model = Model.from_bytes(DEFAULT_VW_ARGS, data, "learner-1")
    text = Model.from_bytes(DEFAULT_VW_ARGS, data, "learner-1").workspace
    # Interleaved requests with different shared lines and action subsets: the kept action
    # examples must come back unchanged from every prediction.
    for round_ in range(50):
        shared = SHARED[round_ % len(SHARED)]
        actions = ACTIONS[round_ % 2 :]
        expected = text.predict([shared, *actions])
        # Equal up to float32 rounding (the pmf is renormalised in float64).
        assert model.predict(shared, actions) == pytest.approx(expected, abs=1e-6)
    assert model.predict(SHARED[0], ACTIONS)[2] > 0.5  # it did learn
    model.close()
    text.finish()


def test_a_replay_with_the_same_model_makes_the_same_choice() -> None:
    data = trained_bytes()
    live = Bandit(DEFAULT_VW_ARGS, model=Model.from_bytes(DEFAULT_VW_ARGS, data, "learner-3"))
    replay = Bandit(DEFAULT_VW_ARGS, model=Model.from_bytes(DEFAULT_VW_ARGS, data, "learner-3"))
    for _ in range(30):
        event_id = uuid.uuid4().hex
        first = live.choose(event_id, SHARED[0], ACTIONS, [0, 0, 0, 0])
        again = replay.choose(event_id, SHARED[0], ACTIONS, [0, 0, 0, 0])
        assert (first.index, first.pmf, first.model_version) == (
            again.index,
            again.pmf,
            "learner-3",
        )


def test_exploration_floor_keeps_every_action_possible() -> None:
    pmf = with_floor([1.0, 0.0, 0.0, 0.0], 0.04)
    assert sum(pmf) == pytest.approx(1.0)
    assert min(pmf) == pytest.approx(0.01)
    assert pmf[0] == pytest.approx(0.97)
    assert with_floor([0.3, 0.7], 0.0) == [0.3, 0.7]
    assert with_floor([1.0], 0.5) == [1.0]


def test_baseline_is_the_highest_priority_and_the_first_among_equals() -> None:
    assert baseline_index([1, 5, 5, 2]) == 1
    assert baseline_index([0, 0, 0]) == 0
    assert baseline_index([-1, -3]) == 0


def test_greedy_index_only_for_a_clear_favourite() -> None:
    assert greedy_index([0.1, 0.7, 0.2]) == 1
    assert greedy_index([0.25, 0.25, 0.25, 0.25]) is None
    assert greedy_index([0.4, 0.4, 0.2]) is None


def test_a_cold_model_explores_uniformly() -> None:
    bandit = Bandit(DEFAULT_VW_ARGS, exploration_floor=0.01)
    choice = bandit.choose("e-1", SHARED[0], ACTIONS, [0, 9, 0, 0])
    assert choice.model_version == COLD_VERSION
    assert choice.pmf == pytest.approx([0.25] * 4)
    assert choice.by_model and choice.policy is PolicyMode.LEARNER
    assert ("policy.mode", "learner") in choice.reasons


def test_baseline_mode_serves_the_priority_order_with_certainty() -> None:
    bandit = Bandit(DEFAULT_VW_ARGS, mode=PolicyMode.BASELINE, exploration_floor=0.1)
    for _ in range(20):
        choice = bandit.choose(uuid.uuid4().hex, SHARED[0], ACTIONS, [1, 3, 3, 2])
        assert (choice.index, choice.baseline) == (1, 1)
        assert choice.pmf == [0.0, 1.0, 0.0, 0.0]
        assert choice.model_version == BASELINE_VERSION and not choice.by_model
        assert dict(choice.reasons)["chosen.baseline"].startswith("p=1.000 among 4 actions")


def test_apprentice_serves_the_baseline_with_a_little_exploration_until_graduated() -> None:
    data = trained_bytes(rewarded=2)
    status = Apprenticeship(agreement=0.5, measured=100, threshold=0.9, graduated=False)
    model = Model.from_bytes(DEFAULT_VW_ARGS, data, "learner-4", status)
    bandit = Bandit(DEFAULT_VW_ARGS, mode=PolicyMode.APPRENTICE, exploration_floor=0.2, model=model)
    choices = [bandit.choose(f"e-{i}", SHARED[0], ACTIONS, [9, 0, 0, 0]) for i in range(400)]
    assert {c.model_version for c in choices} == {BASELINE_VERSION}
    assert choices[0].pmf == pytest.approx([0.85, 0.05, 0.05, 0.05])
    share = sum(c.index == 0 for c in choices) / len(choices)
    assert 0.78 < share < 0.92
    detail = dict(choices[0].reasons)["policy.mode"]
    assert "0.50 of the last 100" in detail and "serving the baseline" in detail

    graduated = Apprenticeship(agreement=0.93, measured=100, threshold=0.9, graduated=True)
    bandit.swap(Model.from_bytes(DEFAULT_VW_ARGS, data, "learner-5", graduated))
    choice = bandit.choose("e-x", SHARED[0], ACTIONS, [9, 0, 0, 0])
    assert choice.model_version == "learner-5" and choice.by_model
    assert choice.pmf[2] == max(choice.pmf)
    assert "serving the learner" in dict(choice.reasons)["policy.mode"]


def test_a_model_that_cannot_score_falls_back_to_uniform() -> None:
    bandit = Bandit(DEFAULT_VW_ARGS)
    with pytest.raises(ModelError):
        bandit.predict(SHARED[0], [])
    with pytest.raises(ModelError, match="identical"):
        bandit.predict(SHARED[0], [ACTIONS[0], ACTIONS[0]])
    choice = bandit.choose("e", SHARED[0], [ACTIONS[0], ACTIONS[0]], [0, 0])
    assert choice.model_failed and choice.pmf == [0.5, 0.5]


def test_a_workspace_that_does_not_predict_action_probabilities_is_refused() -> None:
    with pytest.raises(ModelError, match="ACTION_SCORES"):
        Model(vowpalwabbit.Workspace("--cb_adf --quiet"), "scores-only")


def test_swap_changes_the_version_and_closes_the_old_model() -> None:
    bandit = Bandit(DEFAULT_VW_ARGS)
    old = bandit._model
    bandit.swap(Model.from_bytes(DEFAULT_VW_ARGS, trained_bytes(), "learner-9"))
    assert bandit.model_version == "learner-9"
    assert old.workspace.finished
    assert bandit.predict(SHARED[0], ACTIONS)[1] == "learner-9"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ("--cb_adf -q UA", "must contain --cb_explore_adf"),
        ("--cb_explore_adf --epsilon 0.5", "--epsilon 0.5 is outside [0, 0.2]"),
        ("--cb_explore_adf --epsilon=0.3", "--epsilon 0.3 is outside"),
        ("--cb_explore_adf --squarecb --gamma_scale 0.5", "--gamma_scale 0.5 is below 1"),
        ("--cb_explore_adf --first 100", "--first is not allowed"),
        ("--cb_explore_adf --softmax --lambda 1", "--softmax is not allowed"),
        ("--cb_explore_adf --squarecb --cover 3", "choose one exploration algorithm"),
        ("--cb_explore_adf -i model.vw", "-i is not allowed"),
        ("--cb_explore_adf --dsjson", "--dsjson is not allowed"),
        ("--cb_explore_adf --epsilon lots", "not a number"),
    ],
)
def test_vw_args_outside_the_bounds_are_refused(args: str, problem: str) -> None:
    found = check_vw_args(args, ExplorationBounds(epsilon_max=0.2, gamma_scale_min=1.0))
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "args",
    [
        DEFAULT_VW_ARGS,
        "--cb_explore_adf --epsilon 0.1 -q UA --quiet",
        "--cb_explore_adf --cover 4 --epsilon 0.05",
        "--cb_explore_adf --bag 5 -q UA -q CA",
        "--cb_explore_adf --squarecb --gamma_scale 1000 --gamma_exponent 0.5",
    ],
)
def test_vw_args_within_the_bounds_are_accepted_and_vw_accepts_them(args: str) -> None:
    assert check_vw_args(args, ExplorationBounds()) is None
    bandit = Bandit(args)
    pmf, _ = bandit.predict(SHARED[0], ACTIONS)
    assert sum(pmf) == pytest.approx(1.0)
    bandit.close()
