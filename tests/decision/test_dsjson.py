"""The decision log is DSJSON that Vowpal Wabbit itself parses and learns from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import vowpalwabbit

from emma.common.v1 import common_pb2
from emma.decision.bandit import Model
from emma.decision.config import DEFAULT_VW_ARGS
from emma.decision.decision_log import LoggedDecision, dsjson_timestamp
from emma.decision.domain import Channel, CustomerView
from emma.decision.eligibility import Action
from emma.decision.features import (
    ActionFeatureCache,
    CustomerMatch,
    dsjson_context,
    shared_features,
    shared_line,
    vw_lines,
)
from emma.decision.log_line import line_of
from emma.decision.v1 import decision_pb2
from emma.learner.trainer import Agreement, Trainer

from .conftest import StartDecision, stream_entries
from .helpers import customer, offer, situation


def test_timestamp_is_utc_milliseconds_with_z() -> None:
    instant = datetime(2026, 12, 24, 9, 30, 5, 123456, tzinfo=UTC)
    assert dsjson_timestamp(instant) == "2026-12-24T09:30:05.123Z"


def test_chosen_action_comes_first_in_a_and_p() -> None:
    logged = LoggedDecision(
        event_id="e",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        context={"_multi": [{}, {}, {}]},
        pmf=[0.2, 0.3, 0.5],
        index=2,
        model_version="online-7",
        deferred=True,
        offer_id="o",
        channel="receipt",
        customer="p-0",
        fallback=False,
        policy="apprentice",
        baseline=1,
        reasons=(("chosen.baseline", "p=0.500"), ("filtered.consent", "2")),
    )
    line = logged.dsjson()
    assert line["a"] == [3, 1, 2]
    assert line["p"] == [0.5, 0.2, 0.3]
    assert (line["_label_Action"], line["_labelIndex"], line["_label_probability"]) == (3, 2, 0.5)
    assert line["_skipLearn"] is True
    # Emma's own fields sit where VW's DSJSON reader skips them (see the VW test below).
    assert line["_emma"] == {
        "policy": "apprentice",
        "baselineIndex": 1,
        "customer": "p-0",
        "reasons": [
            {"code": "chosen.baseline", "detail": "p=0.500"},
            {"code": "filtered.consent", "detail": "2"},
        ],
    }


async def test_logged_lines_with_joined_rewards_train_vw(
    start_decision: StartDecision, redis_url: str, tmp_path: Path
) -> None:
    stub = await start_decision()
    request = decision_pb2.DecideRequest(
        customer=common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-7"),
        touchpoint=common_pb2.TOUCHPOINT_APP,
    )
    request.request_time.FromDatetime(datetime(2026, 6, 15, 8, 0, tzinfo=UTC))
    responses = [await stub.Decide(request) for _ in range(60)]
    target = "espresso-beans-app"
    rewards = {r.event_id: 1.0 for r in responses if r.offer.offer_id == target}
    assert rewards, "the uniform first policy explores every action"

    entries = await stream_entries(redis_url, "emma:decisions")
    lines = [line_of(fields) for fields in entries]
    assert {line["EventId"] for line in lines} == {r.event_id for r in responses}
    # Each line carries the policy's reasons and the baseline's choice for the learner.
    assert all(line["_emma"]["reasons"] and line["_emma"]["policy"] == "learner" for line in lines)

    # What the learner does: join each line with its reward (cost = -reward), feed VW DSJSON.
    args = DEFAULT_VW_ARGS.replace("--quiet", "") + " --dsjson --quiet"
    learner = vowpalwabbit.Workspace(args)
    for _ in range(3):
        for line in lines:
            line["_label_cost"] = -rewards.get(line["EventId"], 0.0)
            examples = learner.parse(json.dumps(line))
            assert len(examples) == len(line["c"]["_multi"]) + 1  # shared + one per action
            learner.learn(examples)
            learner.finish_example(examples)
    model = tmp_path / "model.vw"
    learner.save(str(model))
    learner.finish()

    # The model trained on DSJSON scores the service's own text examples the same way:
    # the features hash alike in both forms, so online and offline learning agree.
    scorer = vowpalwabbit.Workspace(f"-i {model} --quiet")
    context = lines[0]["c"]
    shared = {ns: features for ns, features in context.items() if ns != "_multi"}
    pmf = scorer.predict(vw_lines(shared, context["_multi"]))
    target_index = next(
        i for i, action in enumerate(context["_multi"]) if f"offer={target}" in action["A"]
    )
    assert pmf[target_index] == max(pmf)
    assert pmf[target_index] > 0.5
    scorer.finish()


def test_the_learner_and_the_replicas_see_the_same_match_features() -> None:
    """A model trained on logged DSJSON (with M parts) scores the replicas' text alike."""
    cache = ActionFeatureCache()
    offers = [
        offer("wine", category="wine", products=("riesling",)),
        offer("cheese", category="cheese", products=("emmentaler",)),
        offer("coffee", category="coffee", products=("espresso",)),
    ]
    actions = [Action(o, c) for o in offers for c in (Channel.IN_APP, Channel.PUSH)]
    likes_wine = customer(
        liked_categories=frozenset({"wine"}),
        category_affinities=(("wine", 2.0), ("coffee", 1.0)),
        channel_responsiveness={Channel.PUSH: 0.5, Channel.IN_APP: 0.2},
    )
    likes_coffee = customer(
        liked_categories=frozenset({"coffee"}),
        category_affinities=(("coffee", 2.0), ("cheese", 1.0)),
        channel_responsiveness={Channel.IN_APP: 0.5, Channel.PUSH: 0.1},
    )
    trainer = Trainer(DEFAULT_VW_ARGS, Agreement(window=10, threshold=0.9))

    def served(view: CustomerView) -> tuple[str, list[str], dict[str, object]]:
        match = CustomerMatch.of(view)
        cached = [cache.get(action, match.features(action)) for action in actions]
        shared = shared_features(view, situation())
        context = dsjson_context(shared, [f.namespaces for f in cached])
        return shared_line(shared), [f.line for f in cached], context

    def logged(event: int, chosen: int, context: dict[str, object]) -> dict[str, object]:
        order = [chosen, *(i for i in range(len(actions)) if i != chosen)]
        return {
            "_label_cost": 0.0, "_label_probability": 1 / len(actions),
            "_label_Action": chosen + 1, "_labelIndex": chosen, "o": [],
            "Timestamp": "2026-06-15T08:00:00.000Z", "Version": "1", "EventId": f"e{event}",
            "a": [i + 1 for i in order], "p": [1 / len(actions)] * len(actions), "c": context,
        }  # fmt: skip

    for event in range(120):
        view = likes_wine if event % 2 else likes_coffee
        _, _, context = served(view)
        chosen = event % len(actions)
        # The customer answers when the offer is in a category they like, on their best channel.
        liked = actions[chosen].offer.category in view.liked_categories
        best = max(view.channel_responsiveness, key=lambda c: view.channel_responsiveness[c])
        reward = 1.0 if liked and actions[chosen].channel is best else 0.0
        trainer.learn(logged(event, chosen, context), reward)
    assert any("M" in action for action in context["_multi"])  # type: ignore[attr-defined]

    model = Model.from_bytes(DEFAULT_VW_ARGS, trainer.snapshot(), "learner-1")
    for view, favourite in ((likes_wine, (0, 1)), (likes_coffee, (4, 5))):
        text_shared, text_actions, context = served(view)
        served_pmf = model.predict(text_shared, text_actions)
        examples = trainer.workspace.parse(json.dumps(logged(999, 0, context)))
        logged_pmf = trainer.workspace.predict(examples)
        trainer.workspace.finish_example(examples)
        assert served_pmf == pytest.approx([float(p) for p in logged_pmf], abs=1e-6)
        assert max(range(len(actions)), key=lambda i: served_pmf[i]) in favourite
    model.close()
    trainer.close()
