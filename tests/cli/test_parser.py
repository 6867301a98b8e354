"""The `emma` command line: subcommands, their flags and argument errors, without any service."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from emma.cli import decide, demo, serve, up
from emma.cli.main import build_parser, main
from emma.cli.table import format_table


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_up_defaults_to_the_conventional_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMMA_REDIS_URL", raising=False)
    args = parse("up")
    assert args.func is up.run
    assert (args.decision_port, args.profile_port, args.context_port) == (50051, 50052, 50053)
    assert args.redis_url is None
    assert args.demo is False
    assert args.host == "127.0.0.1"


def test_up_flags_and_redis_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMMA_REDIS_URL", "redis://10.0.0.5:6379/1")
    args = parse("up", "--demo", "--decision-port", "6001", "--run-dir", "/tmp/x")
    assert args.redis_url == "redis://10.0.0.5:6379/1"
    assert args.demo is True
    assert args.decision_port == 6001
    assert args.run_dir == Path("/tmp/x")
    mesh = up.mesh_from_args(args)
    assert mesh.decision_address == "127.0.0.1:6001"
    assert mesh.redis_url == "redis://10.0.0.5:6379/1"


def test_serve_passes_every_following_flag_to_the_service() -> None:
    args = parse("serve", "decision", "--port", "6000", "--budget-ms", "80")
    assert args.func is serve.run
    assert args.service == "decision"
    assert args.service_args == ["--port", "6000", "--budget-ms", "80"]


def test_serve_rejects_unknown_services(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse("serve", "learner")
    assert caught.value.code == 2
    assert "invalid choice: 'learner'" in capsys.readouterr().err


def test_decide_flags() -> None:
    args = parse(
        "decide",
        "--customer",
        "loyalty_card:1001",
        "--touchpoint",
        "pos",
        "--store",
        "berlin-mitte",
        "--basket",
        "brezel:bakery:2:1.40",
        "emmentaler:cheese:1:4.99",
        "--basket",
        "riesling:wine:1:8.99",
        "--channel",
        "receipt",
        "--channel",
        "cashier_prompt",
        "--budget-ms",
        "80",
        "--address",
        "10.1.1.1:50051",
    )
    assert args.func is decide.run_decide
    assert args.basket == [
        "brezel:bakery:2:1.40",
        "emmentaler:cheese:1:4.99",
        "riesling:wine:1:8.99",
    ]
    assert args.channel == ["receipt", "cashier_prompt"]
    assert args.budget_ms == 80.0
    assert args.address == "10.1.1.1:50051"


def test_decide_address_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMMA_DECISION_ADDR", "emma.internal:443")
    assert parse("decide", "--customer", "customer_id:c", "--touchpoint", "app").address == (
        "emma.internal:443"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["decide", "--touchpoint", "pos"], "--customer"),
        (["decide", "--customer", "customer_id:c", "--touchpoint", "moon"], "invalid choice"),
        (["decide", "--customer", "c", "--touchpoint", "app", "--channel", "fax"], "fax"),
        (["reward", "ev-1", "lots"], "invalid float value"),
        ([], "COMMAND"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--customer", "1001"], "expected KIND:VALUE"),
        (["--customer", "passport:1"], "unknown identifier kind 'passport'"),
        (["--customer", "loyalty_card:1", "--basket", "brezel:2"], "basket[0]"),
        (["--customer", "loyalty_card:1", "--lat", "52.5"], "both --lat and --lon"),
    ],
)
def test_decide_reports_bad_values_before_calling(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The address is never dialled: the request is checked first.
    code = main(["decide", "--touchpoint", "pos", "--address", "127.0.0.1:1", *extra])
    assert code == 2
    assert message in capsys.readouterr().err


def test_decide_reports_an_unreachable_service(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["decide", "--customer", "customer_id:c", "--touchpoint", "app"]
    code = main([*argv, "--address", "127.0.0.1:1", "--deadline", "0.5"])
    assert code == 1
    # Retries of UNAVAILABLE may use up the whole deadline before giving up.
    assert re.search(r"Decide failed: (UNAVAILABLE|DEADLINE_EXCEEDED)", capsys.readouterr().err)


def test_demo_and_load_demo_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse("demo").func is demo.run_demo
    monkeypatch.setenv("EMMA_PROFILE_ADDR", "10.0.0.9:50052")
    args = parse("load-demo")
    assert args.func is demo.run_load_demo
    assert args.profile_address == "10.0.0.9:50052"


def test_table_aligns_columns() -> None:
    table = format_table(("customer", "p"), [("anna", "0.33"), ("clara-long", "1.00")])
    lines = table.splitlines()
    assert lines[0] == "customer    p"
    assert lines[1] == "----------  ----"
    assert lines[3] == "clara-long  1.00"


def test_serve_runs_the_services_main_with_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    # A bad flag value stops the service before it binds anything, naming the setting.
    assert main(["serve", "decision", "--budget-ms", "-1"]) == 2
    assert "EMMA_DECISION_BUDGET_MS=-1.0: must be > 0" in capsys.readouterr().err


def test_faults_run_the_replicas_on_services_unless_told(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert parse("faults").dependencies == "services"
    assert parse("faults", "--dependencies", "in-process").dependencies == "in-process"
    with pytest.raises(SystemExit) as refused:
        parse("faults", "--dependencies", "grpc")
    assert refused.value.code == 2
    assert "--dependencies" in capsys.readouterr().err


def test_bench_spreads_calls_over_connections(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse("bench").connections == 8
    assert main(["bench", "--connections", "0"]) == 2
    assert "--connections must be 1..64" in capsys.readouterr().err
