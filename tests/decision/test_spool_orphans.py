"""Spools of workers beyond today's count are each taken up by exactly one worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from emma.decision.config import DecisionConfig
from emma.decision.server import orphaned_spools, spool_path
from emma.runtime.config import load_config
from emma.runtime.main import WORKER_INDEX_ENV


def config(spools: Path, workers: int) -> DecisionConfig:
    return load_config(
        DecisionConfig,
        [],
        {"EMMA_DECISION_SPOOL_DIR": str(spools), "EMMA_DECISION_WORKERS": str(workers)},
    )


def test_each_orphan_goes_to_one_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A replica that ran six workers now runs two.
    for index in range(6):
        (tmp_path / f"decision-log-{index}.spool").write_bytes(b"")
    (tmp_path / "outcomes-7.spool").write_bytes(b"")
    (tmp_path / "decision-log-x.spool").write_bytes(b"")  # not a worker's: left alone
    taken = {}
    for worker in (0, 1):
        monkeypatch.setenv(WORKER_INDEX_ENV, str(worker))
        taken[worker] = [p.name for p in orphaned_spools(config(tmp_path, 2), "decision-log")]
        assert spool_path(config(tmp_path, 2), "decision-log") == (
            tmp_path / f"decision-log-{worker}.spool"
        )
    assert taken == {
        0: ["decision-log-2.spool", "decision-log-4.spool"],
        1: ["decision-log-3.spool", "decision-log-5.spool"],
    }
    assert [p.name for p in orphaned_spools(config(tmp_path, 2), "outcomes")] == [
        "outcomes-7.spool"
    ]
    # As many workers as before, or more: nothing is orphaned.
    assert orphaned_spools(config(tmp_path, 6), "decision-log") == []
    monkeypatch.setenv(WORKER_INDEX_ENV, "0")
    assert orphaned_spools(config(tmp_path, 8), "decision-log") == []


def test_no_spool_directory_no_orphans() -> None:
    assert orphaned_spools(load_config(DecisionConfig, [], {}), "decision-log") == []
