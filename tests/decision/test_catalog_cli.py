"""`emma catalog check` and `emma catalog schema` as a marketer or CI runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emma.cli.main import main
from emma.decision.config import DEFAULT_CATALOG

BAD = """\
offers:
  - id: emmentaler-20
    title: "20% auf Emmentaler"
    category: cheese
    channels: [in_app, fax]
  - id: gouda
    title: Gouda
    category: cheese
    channels: [in_app]
    segments: [gouda_fans]
    valid_from: 2026-05-01
    valid_until: 2026-04-01
  - id: points
    title: Points
    category: loyalty
    channels: [receipt]
    fallback: true
"""


def test_a_good_catalog_prints_ok_and_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "check", str(DEFAULT_CATALOG)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK {DEFAULT_CATALOG}\n")
    assert "fallback loyalty-points" in out
    assert "segments: cheese_lovers, regulars, lapsed, coffee_fans" in out
    assert "push-daily (10/1d)" in out
    assert "quiet hours: push, sms (horizon 1d)" in out


def test_schema_errors_are_listed_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(BAD.split("  - id: gouda")[0] + BAD.split("channels: [in_app]\n")[-1])
    assert main(["catalog", "check", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{path}: offers[0] (offer_id emmentaler-20): channels[1]: unknown value 'fax', "
        "expected one of ['in_app', 'push', 'email', 'sms', 'web', 'receipt', "
        "'cashier_prompt', 'store_screen']",
        f"{path}: 1 problem",
    ]


def test_cross_field_errors_are_listed_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(BAD.replace("[in_app, fax]", "[in_app]"))
    assert main(["catalog", "check", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{path}: offers[1] (offer_id gouda): valid_until: 2026-04-01 is before valid_from "
        "2026-05-01",
        f"{path}: offers[1] (offer_id gouda): segments[0]: unknown segment 'gouda_fans'",
        f"{path}: 2 problems",
    ]


def test_unreadable_or_broken_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "check", str(tmp_path / "missing.yaml")]) == 1
    assert f"{tmp_path}/missing.yaml: cannot read: No such file or directory\n" in (
        capsys.readouterr().out
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("offers:\n  - id: a\n   title: b\n")
    assert main(["catalog", "check", str(broken)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{broken}: not valid YAML: line 3 column 4: "
        "expected <block end>, but found '<block mapping start>'",
        f"{broken}: 1 problem",
    ]


def test_the_schema_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_command_line_entry_point_exits_1_on_errors(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(BAD)
    result = subprocess.run(
        [sys.executable, "-m", "emma.cli", "catalog", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "offers[0] (offer_id emmentaler-20): channels[1]: unknown value 'fax'" in result.stdout
