"""Catalog hot reload: a changed valid file is swapped in, a bad one keeps the old catalog."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from emma.common.v1 import common_pb2
from emma.decision.catalog import Catalog, load_catalog
from emma.decision.catalog_watch import CatalogWatcher
from emma.decision.v1 import decision_pb2

from .conftest import StartDecision


def catalog_text(*offer_ids: str) -> str:
    offers: list[dict[str, Any]] = [
        {"id": offer_id, "title": offer_id, "category": "cheese", "channels": ["in_app"]}
        for offer_id in offer_ids
    ]
    offers.append(
        {"id": "points", "title": "Points", "category": "loyalty", "channels": ["in_app"],
         "fallback": True}
    )  # fmt: skip
    return yaml.safe_dump({"offers": offers})


def write(path: Path, text: str) -> None:
    """Writes and moves the mtime on, so even a same-size rewrite within a tick is seen."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_a_changed_valid_file_is_installed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    write(path, catalog_text("a"))
    installed: list[Catalog] = []
    watcher = CatalogWatcher(path, installed.append)
    assert not watcher.check()  # unchanged since the watcher started
    write(path, catalog_text("a", "b"))
    assert watcher.check()
    assert [o.offer_id for o in installed[-1].candidates] == ["a", "b"]
    assert not watcher.check()
    assert watcher.reloads == 1


def test_a_bad_file_keeps_the_old_catalog_and_logs_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "catalog.yaml"
    write(path, catalog_text("a"))
    installed: list[Catalog] = []
    watcher = CatalogWatcher(path, installed.append)
    broken = catalog_text("a").replace("in_app", "fax", 1)
    with caplog.at_level(logging.ERROR, logger="emma.decision.catalog_watch"):
        write(path, broken)
        assert not watcher.check()
    assert installed == []
    (record,) = caplog.records
    assert record.getMessage() == "catalog rejected, keeping the current one"
    errors = record.__dict__["errors"]
    assert errors == [
        f"{path}: offers[0] (offer_id a): channels[0]: unknown value 'fax', expected one of "
        "['in_app', 'push', 'email', 'sms', 'web', 'receipt', 'cashier_prompt', 'store_screen']"
    ]
    # Logged once, not every second: the same bad file is not read again.
    caplog.clear()
    assert not watcher.check()
    assert caplog.records == [] and watcher.rejected == 1
    # Fixing the file installs it; a deleted file keeps what is there.
    write(path, catalog_text("c"))
    assert watcher.check()
    path.unlink()
    assert not watcher.check()
    assert [o.offer_id for o in installed[-1].candidates] == ["c"]


async def test_the_running_service_picks_up_an_edit(
    start_decision: StartDecision, tmp_path: Path
) -> None:
    path = tmp_path / "catalog.yaml"
    write(path, catalog_text("before"))
    stub = await start_decision(catalog_path=path, catalog_poll_s=0.05)
    request = decision_pb2.DecideRequest(
        customer=common_pb2.CustomerRef(kind=common_pb2.IDENTIFIER_KIND_CUSTOMER_ID, value="c-1"),
        touchpoint=common_pb2.TOUCHPOINT_APP,
    )
    assert (await stub.Decide(request)).offer.offer_id == "before"

    async def offered_within(offer_id: str, seconds: float) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            if (await stub.Decide(request)).offer.offer_id == offer_id:
                return True
            await asyncio.sleep(0.02)
        return False

    write(path, catalog_text("after"))
    assert await offered_within("after", 5.0)
    # A broken edit is rejected; every decision keeps using the last good catalog.
    write(path, "offers: [")
    await asyncio.sleep(0.3)
    for _ in range(5):
        assert (await stub.Decide(request)).offer.offer_id == "after"
    write(path, catalog_text("fixed"))
    assert await offered_within("fixed", 5.0)
    assert load_catalog(path).candidates[0].offer_id == "fixed"
