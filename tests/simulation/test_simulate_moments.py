"""`emma simulate --moments` against a real private mesh: the moments part of the report is
made of real firings (what the outbound stream, the decision log and the rewards hold),
dedup holds, and redeemed moments reward their decisions."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import redis

from emma.cli.main import main
from emma.cli.mesh import Mesh, MeshPorts
from emma.cli.simulate import stop_wall_clock_engine
from emma.decision.log_line import line_of
from emma.simulation.driver import DriveSettings
from emma.simulation.moments import MomentSettings
from emma.simulation.moments_report import moments_text, summarise_moments
from emma.simulation.population import PopulationSettings
from emma.simulation.run import CATALOG, MESH_ENV, MomentsTarget, SimulationSettings, simulate
from emma.triggers.rules import KINDS

OUTBOUND = "emma:outbound"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    env = {"EMMA_CATALOG": str(CATALOG), **MESH_ENV}
    run_dir = tmp_path_factory.mktemp("moments-run")
    with Mesh(ports=MeshPorts.free(), env=env, run_dir=run_dir) as mesh:
        stop_wall_clock_engine(mesh)
        yield mesh


def _outbound(client: redis.Redis, prefix: str) -> list[dict[str, str]]:
    entries: list[tuple[str, dict[str, str]]] = client.xrange(OUTBOUND)  # type: ignore[assignment]
    return [f for _, f in entries if f["recipient"].startswith(f"customer_id:{prefix}-")]


@pytest.mark.timeout(240)
async def test_moments_are_fired_delivered_redeemed_and_learned(mesh: Mesh) -> None:
    assert mesh.redis_url is not None
    settings = SimulationSettings(
        population=PopulationSettings(customers=30),
        drive=DriveSettings(decisions=300, concurrency=8, seed=5, budget_ms=3000),
        prefix="mom",
        window=100,
        tail=100,
        # A fixed span: the same timeline on every day the test runs.
        moments=MomentSettings(days=35, end=date(2026, 6, 30), seed=5),
    )
    target = MomentsTarget(mesh.context_address, mesh.redis_url)
    result = await simulate(mesh.decision_address, mesh.profile_address, settings, None, target)
    moments = result.moments
    assert moments is not None
    summary = summarise_moments(moments, result.steps)

    with redis.Redis.from_url(mesh.redis_url, decode_responses=True) as client:
        published = _outbound(client, "mom")
        # The report's firings are the outbound stream's entries, kind by kind.
        assert summary.fired == dict(
            sorted(collections.Counter(f["kind"] for f in published).items())
        )
        assert [d.event_id for d in moments.deliveries] == [f["event_id"] for f in published]
        assert summary.delivered == len(published)
        # The population made every kind of rule fire, and some firings were held back.
        assert set(summary.fired) == set(KINDS), summary.fired
        assert summary.suppressed.get("dedup", 0) > 0
        assert summary.suppressed.get("no_offer", 0) > 0  # customers without push/email consent
        # Dedup: at most one geofence push per customer and day (the rule's 1d window).
        geofence = [
            (f["customer"], datetime.fromisoformat(f["send_at"]).astimezone(UTC).date())
            for f in published
            if f["rule"] == "geofence-entry"
        ]
        assert geofence and len(geofence) == len(set(geofence))
        # A geofence push offers the store the customer walked into.
        assert all(
            f["offer_id"] == f"instore-{f['store_id']}"
            for f in published
            if f["kind"] == "geofence"
        )

        # Every moment is a logged decision, made for its rule.
        logged: dict[str, dict[str, str]] = {}
        entries: list[tuple[str, dict[str, str]]] = client.xrange("emma:decisions")  # type: ignore[assignment]
        for _, fields in entries:
            line = line_of(fields)
            if "moment" in line["_emma"]:
                logged[line["EventId"]] = line["_emma"]["moment"]
        for entry in published:
            assert logged[entry["event_id"]]["rule"] == entry["rule"]

        # Redeemed moments rewarded their decisions through the engine, once each.
        redeemed = {d.event_id for d in moments.deliveries if d.redeemed}
        assert redeemed and summary.rewarded == len(redeemed)
        rewards: list[tuple[str, dict[str, str]]] = client.xrange("emma:rewards")  # type: ignore[assignment]
        redeem_rewards = [
            json.loads(f["json"]) for _, f in rewards if f.get("event_id") in redeemed
        ]
        assert sorted(r["EventId"] for r in redeem_rewards) == sorted(redeemed)
        assert all(r["kind"] == "redeem" for r in redeem_rewards)

    # The customers respond with the hidden world's probabilities.
    assert 0 < summary.per_moment < 1 and 0 < summary.expected_per_moment < 1
    assert summary.redeemed == len(redeemed)
    assert 0 < summary.reward_share < 1
    assert "delivered" in moments_text(summary)


def test_the_command_reports_moments(
    mesh: Mesh, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mesh.redis_url is not None
    report = tmp_path / "report.json"
    code = main(
        ["simulate", "--decision-addr", mesh.decision_address,
         "--profile-addr", mesh.profile_address, "--context-addr", mesh.context_address,
         "--redis-url", mesh.redis_url, "--moments", "--moment-days", "14",
         "--decisions", "100", "--customers", "15", "--window", "50", "--tail", "50",
         "--prefix", "momcli", "--quiet", "--json", str(report)]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "moments (trigger engine on the simulated clock):" in out
    assert "kind  " in out and "per asked-for decision" in out
    document = json.loads(report.read_text())["moments"]
    with redis.Redis.from_url(mesh.redis_url, decode_responses=True) as client:
        assert document["delivered"] == len(_outbound(client, "momcli"))
    assert sum(document["fired"].values()) == document["delivered"]


def test_moments_against_a_running_mesh_need_its_context_and_redis(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["simulate", "--decision-addr", "127.0.0.1:1", "--profile-addr", "127.0.0.1:2"]
    assert main([*args, "--moments"]) == 2
    assert "--context-addr and --redis-url" in capsys.readouterr().err
    assert main(["simulate", "--moments", "--moment-days", "0"]) == 2
    assert "--moment-days" in capsys.readouterr().err
