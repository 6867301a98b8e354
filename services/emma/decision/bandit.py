"""The contextual bandit: VW --cb_explore_adf models, hot-swapped, sampled from the event id."""

from __future__ import annotations

import collections
import dataclasses
import enum
import hashlib
import logging
import math
import os
import shlex
import tempfile
import threading
from collections.abc import Sequence

import vowpalwabbit

log = logging.getLogger(__name__)

# Model versions that are no learned snapshot: an untrained model, the baseline policy, and
# the uniform choice made when the model could not score.
COLD_VERSION = "cold"
BASELINE_VERSION = "baseline"
UNIFORM_VERSION = "fallback"
# Action examples kept parsed per model: far more than a catalog's (offer, channel) pairs.
EXAMPLE_CACHE_SIZE = 10_000


class ModelError(RuntimeError):
    """The model could not score; the caller falls back to a uniform choice."""


class PolicyMode(enum.StrEnum):
    """Who chooses: the learned model, the catalog's priorities, or the priorities while
    the learner trains on their outcomes until it agrees with them often enough."""

    LEARNER = "learner"
    BASELINE = "baseline"
    APPRENTICE = "apprentice"


def sample_index(pmf: Sequence[float], event_id: str) -> int:
    """Draws an index from `pmf` with a uniform derived from the event id.

    The same event id and the same pmf always give the same index, so any decision
    can be replayed from the log; different event ids explore independently.
    """
    digest = hashlib.sha256(event_id.encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    total = 0.0
    for index, probability in enumerate(pmf):
        total += probability
        if draw < total:
            return index
    # Rounding can leave the sum a hair below 1: the last action with mass takes the rest.
    return max(i for i, p in enumerate(pmf) if p > 0)


def uniform(count: int) -> list[float]:
    return [1.0 / count] * count


def with_floor(pmf: Sequence[float], floor: float) -> list[float]:
    """Mixes `floor` of the mass uniformly over every action: none is ever left unexplored,
    so offline evaluation of any other policy has a propensity to weigh by."""
    if floor <= 0 or len(pmf) < 2:
        return list(pmf)
    share = floor / len(pmf)
    return [(1 - floor) * p + share for p in pmf]


def baseline_index(priorities: Sequence[int]) -> int:
    """The baseline's choice: the highest priority, the first action among equals.

    Actions come offer by offer in catalog order with each offer's channels in its own
    order, so this is the highest-priority offer on its first allowed channel.
    """
    # `index` finds the first of the highest: no Python call per action.
    return priorities.index(max(priorities))


def greedy_index(pmf: Sequence[float]) -> int | None:
    """The action the model prefers outright, or None while several tie for the top."""
    best = pmf.index(max(pmf))
    if any(p >= pmf[best] - 1e-9 for i, p in enumerate(pmf) if i != best):
        return None
    return best


@dataclasses.dataclass(frozen=True)
class ExplorationBounds:
    """What EMMA_VW_ARGS may ask for: the most epsilon, the least SquareCB gamma scale."""

    epsilon_max: float = 0.2
    gamma_scale_min: float = 1.0


# VW's own defaults for the values the bounds check when the arguments leave them out.
_VW_DEFAULT_EPSILON = 0.05
_VW_DEFAULT_GAMMA_SCALE = 10.0
_EXPLORERS = frozenset(
    {"--squarecb", "--cover", "--bag", "--regcb", "--regcbopt", "--rnd", "--synthcover"}
)
_REFUSED = {
    "--first": "explore-first stops exploring after its first examples",
    "--softmax": "softmax exploration has no bound EMMA_* can enforce",
    "-d": "the service feeds the examples itself",
    "--data": "the service feeds the examples itself",
    "-i": "the service loads the model itself",
    "--initial_regressor": "the service loads the model itself",
    "-f": "the learner saves the model itself",
    "--final_regressor": "the learner saves the model itself",
    "--dsjson": "the learner reads DSJSON itself",
    "--json": "the learner reads DSJSON itself",
    "--daemon": "Emma serves the model",
    "--passes": "learning is online, one pass",
    "-c": "learning is online, no cache file",
    "--cache": "learning is online, no cache file",
    "--cache_file": "learning is online, no cache file",
    "-p": "predictions go to the decision log",
    "--predictions": "predictions go to the decision log",
    "-t": "the learner must learn",
    "--testonly": "the learner must learn",
    "--audit": "audit output would flood the logs",
}


def _options(tokens: list[str]) -> dict[str, str]:
    """`--name value`, `--name=value` and bare flags as name -> value ("" for flags)."""
    options: dict[str, str] = {}
    for position, token in enumerate(tokens):
        if not token.startswith("-") or _is_number(token):
            continue
        name, _, value = token.partition("=")
        if not value and position + 1 < len(tokens):
            following = tokens[position + 1]
            if not following.startswith("-") or _is_number(following):
                value = following
        options.setdefault(name, value)
    return options


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_vw_args(vw_args: str, bounds: ExplorationBounds) -> str | None:
    """Why `vw_args` cannot be served within the bounds, or None when they can.

    VW itself rejects unknown options when the workspace is created; this refuses
    what would run but break the service or explore beyond the configured bounds.
    """
    try:
        tokens = shlex.split(vw_args)
    except ValueError as error:
        return f"cannot split: {error}"
    options = _options(tokens)
    if "--cb_explore_adf" not in options:
        return "must contain --cb_explore_adf"
    for name, why in _REFUSED.items():
        if name in options:
            return f"{name} is not allowed: {why}"
    explorers = sorted(_EXPLORERS & options.keys())
    if len(explorers) > 1:
        return f"choose one exploration algorithm, not {' and '.join(explorers)}"
    explorer = explorers[0] if explorers else None
    try:
        epsilon = float(options.get("--epsilon") or _VW_DEFAULT_EPSILON)
        gamma_scale = float(options.get("--gamma_scale") or _VW_DEFAULT_GAMMA_SCALE)
    except ValueError as error:
        return f"not a number: {error}"
    uses_epsilon = explorer in (None, "--cover") or "--epsilon" in options
    if uses_epsilon and not 0 <= epsilon <= bounds.epsilon_max:
        return f"--epsilon {epsilon:g} is outside [0, {bounds.epsilon_max:g}] (EMMA_EPSILON_MAX)"
    if explorer == "--squarecb" and gamma_scale < bounds.gamma_scale_min:
        return (
            f"--gamma_scale {gamma_scale:g} is below {bounds.gamma_scale_min:g} "
            "(EMMA_GAMMA_SCALE_MIN)"
        )
    return None


@dataclasses.dataclass(frozen=True)
class Apprenticeship:
    """How often the learner's top choice agreed with the baseline's, as the learner published."""

    agreement: float
    measured: int
    threshold: float
    graduated: bool


def load_workspace(vw_args: str, data: bytes | None = None) -> vowpalwabbit.Workspace:
    """A workspace from the arguments, with the weights of a saved model when given.

    This VW version loads models only from files, so the bytes pass through a private
    temporary file that is removed at once.
    """
    if data is None:
        return vowpalwabbit.Workspace(vw_args)
    descriptor, path = tempfile.mkstemp(prefix="emma-model-", suffix=".vw")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        return vowpalwabbit.Workspace(f"{vw_args} -i {shlex.quote(path)}")
    finally:
        os.unlink(path)


def save_workspace(workspace: vowpalwabbit.Workspace) -> bytes:
    """The model's bytes: weights and, VW's default, the state to resume learning."""
    descriptor, path = tempfile.mkstemp(prefix="emma-model-", suffix=".vw")
    os.close(descriptor)
    try:
        workspace.save(path)
        with open(path, "rb") as file:
            return file.read()
    finally:
        os.unlink(path)


class Model:
    """One VW workspace and its action examples, each parsed once and reused.

    A request parses only its shared line; the action examples (offer and channel
    features, fixed by the catalog) are parsed the first time they are seen and kept.
    VW adds the shared features to each action example while it predicts and removes
    them afterwards, so a kept example is the same before and after every prediction.
    Not thread safe: the Bandit serialises calls.
    """

    def __init__(
        self,
        workspace: vowpalwabbit.Workspace,
        version: str,
        apprenticeship: Apprenticeship | None = None,
    ) -> None:
        self.workspace = workspace
        self.version = version
        self.apprenticeship = apprenticeship
        predicts = workspace.get_prediction_type()
        if predicts != vowpalwabbit.PredictionType.ACTION_PROBS:
            workspace.finish()
            raise ModelError(f"the model predicts {predicts.name}, not action probabilities")
        # Asked once: the binding asks the workspace again for every example made without it.
        self._label_type = workspace.get_label_type()
        self._actions: collections.OrderedDict[str, vowpalwabbit.Example] = (
            collections.OrderedDict()
        )

    @classmethod
    def cold(cls, vw_args: str) -> Model:
        """An untrained model: every action scores alike until a snapshot arrives."""
        return cls(load_workspace(vw_args), COLD_VERSION)

    @classmethod
    def from_bytes(
        cls,
        vw_args: str,
        data: bytes,
        version: str,
        apprenticeship: Apprenticeship | None = None,
    ) -> Model:
        return cls(load_workspace(vw_args, data), version, apprenticeship)

    def _action(self, line: str) -> vowpalwabbit.Example:
        example = self._actions.get(line)
        if example is None:
            example = vowpalwabbit.Example(self.workspace, line, self._label_type)
            self._actions[line] = example
            if len(self._actions) > EXAMPLE_CACHE_SIZE:
                self._actions.popitem(last=False)
        return example

    def predict(self, shared_line: str, action_lines: Sequence[str]) -> list[float]:
        """The probability of each action, in order, as VW's exploration policy gives it."""
        if not action_lines:
            raise ModelError("no action to score")
        if len(set(action_lines)) != len(action_lines):
            # One example cannot stand twice in one multi-line example.
            raise ModelError("two actions have identical features")
        try:
            examples = [vowpalwabbit.Example(self.workspace, shared_line, self._label_type)]
            try:
                # Kept examples, looked up in C; an action not seen yet takes the long way.
                examples.extend(map(self._actions.__getitem__, action_lines))
            except KeyError:
                del examples[1:]
                examples.extend(self._action(line) for line in action_lines)
            raw = self.workspace.predict(examples, vowpalwabbit.PredictionType.ACTION_PROBS)
        except Exception as error:  # VW raises bare RuntimeErrors on malformed input.
            raise ModelError(f"predict failed: {error}") from error
        if not isinstance(raw, list) or len(raw) != len(action_lines):
            raise ModelError(f"predict returned {raw!r} for {len(action_lines)} actions")
        pmf = [float(p) for p in raw]
        total = sum(pmf)
        # A NaN or an infinity anywhere makes the sum one too.
        if not math.isfinite(total) or total <= 0 or min(pmf) < 0:
            raise ModelError(f"predict returned an invalid pmf {pmf!r}")
        return [p / total for p in pmf]

    def close(self) -> None:
        # The examples go first: they belong to the workspace.
        self._actions.clear()
        self.workspace.finish()


@dataclasses.dataclass(frozen=True)
class Choice:
    """The chosen action, the distribution it was drawn from, and why."""

    pmf: list[float]
    index: int
    model_version: str
    policy: PolicyMode
    baseline: int
    # The policy's own reasons (the baseline's choice, the mode, the apprentice's
    # agreement); the pipeline adds the model's and the filters'.
    reasons: tuple[tuple[str, str], ...]
    model_failed: bool = False

    @property
    def by_model(self) -> bool:
        """Whether the model's distribution chose (rather than the baseline)."""
        return self.model_version != BASELINE_VERSION


class Bandit:
    """The serving model behind a lock; a snapshot replaces it between two predictions.

    Predictions are short (tens of microseconds to a millisecond) and run inline on the
    event loop; loading a snapshot runs in a thread and only the swap takes the lock.
    """

    def __init__(
        self,
        vw_args: str,
        *,
        mode: PolicyMode = PolicyMode.LEARNER,
        exploration_floor: float = 0.0,
        model: Model | None = None,
    ) -> None:
        self.vw_args = vw_args
        self.mode = mode
        self.exploration_floor = exploration_floor
        self._model = model or Model.cold(vw_args)
        self._lock = threading.Lock()

    @property
    def model_version(self) -> str:
        return self._model.version

    @property
    def apprenticeship(self) -> Apprenticeship | None:
        return self._model.apprenticeship

    def predict(self, shared_line: str, action_lines: Sequence[str]) -> tuple[list[float], str]:
        """VW's pmf over the actions and the version of the model that gave it."""
        with self._lock:
            model = self._model
            return model.predict(shared_line, action_lines), model.version

    def swap(self, model: Model) -> None:
        """Serves `model` from the next prediction on and releases the old one."""
        with self._lock:
            old, self._model = self._model, model
        old.close()

    def _serves_baseline(self) -> bool:
        if self.mode is PolicyMode.BASELINE:
            return True
        status = self._model.apprenticeship
        return self.mode is PolicyMode.APPRENTICE and not (status and status.graduated)

    def choose(
        self,
        event_id: str,
        shared_line: str,
        action_lines: Sequence[str],
        priorities: Sequence[int],
    ) -> Choice:
        """Scores the actions under the configured policy mode and draws one from the event id."""
        count = len(action_lines)
        baseline = baseline_index(priorities)
        reasons: list[tuple[str, str]] = []
        failed = False
        if self._serves_baseline():
            pmf = [1.0 if i == baseline else 0.0 for i in range(count)]
            version = BASELINE_VERSION
            if self.mode is PolicyMode.APPRENTICE:
                # A little exploration gives the learner outcomes of other actions too.
                pmf = with_floor(pmf, self.exploration_floor)
        else:
            try:
                raw, version = self.predict(shared_line, action_lines)
                pmf = with_floor(raw, self.exploration_floor)
            except ModelError as error:
                log.warning("model could not score", extra={"error": str(error)})
                pmf, version, failed = uniform(count), UNIFORM_VERSION, True
        index = sample_index(pmf, event_id)
        if version == BASELINE_VERSION:
            how = "the highest-priority offer on its first channel"
            if index != baseline:
                how = "explored away from the baseline's choice"
            reasons.append(("chosen.baseline", f"p={pmf[index]:.3f} among {count} actions; {how}"))
        reasons.append(("policy.mode", self._describe_mode()))
        return Choice(
            pmf=pmf,
            index=index,
            model_version=version,
            policy=self.mode,
            baseline=baseline,
            reasons=tuple(reasons),
            model_failed=failed,
        )

    def _describe_mode(self) -> str:
        if self.mode is not PolicyMode.APPRENTICE:
            return self.mode.value
        status = self._model.apprenticeship
        if status is None:
            return "apprentice: no agreement measured yet, serving the baseline"
        serving = "the learner" if status.graduated else "the baseline"
        return (
            f"apprentice: learner agrees with the baseline on {status.agreement:.2f} of the "
            f"last {status.measured} decisions (threshold {status.threshold:.2f}); "
            f"serving {serving}"
        )

    def close(self) -> None:
        with self._lock:
            self._model.close()
