"""The spool file: items round trip in order, a torn last line is skipped, one process at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from emma.runtime.spool import Spool, SpoolInUse


def spool(path: Path) -> Spool[str]:
    return Spool(path, lambda item: item.encode(), lambda line: line.decode())


def test_items_come_back_in_order_until_cleared(tmp_path: Path) -> None:
    path = tmp_path / "spools" / "log-0.spool"
    first = spool(path)
    for item in ("a", "b", "c"):
        first.append(item)
    assert first.items() == ["a", "b", "c"]
    first.clear()
    first.append("d")
    assert first.items() == ["d"]
    with pytest.raises(ValueError, match="one line"):
        first.append("two\nlines")
    first.close()
    # The next process reads what the last one left.
    second = spool(path)
    assert second.items() == ["d"]
    second.close()


def test_a_last_line_cut_short_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log-0.spool"
    path.write_bytes(b"a\nb\npartial")
    reader = spool(path)
    assert reader.items() == ["a", "b"]
    reader.close()


def test_two_holders_of_one_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "log-0.spool"
    holder = spool(path)
    with pytest.raises(SpoolInUse, match="in use"):
        spool(path)
    holder.close()
    spool(path).close()  # free again once closed


def test_a_spool_no_process_holds_is_taken_over(tmp_path: Path) -> None:
    mine = spool(tmp_path / "log-0.spool")
    mine.append("a")
    orphan = tmp_path / "log-3.spool"
    orphan.write_bytes(b"b\nc\npartial")
    assert mine.take_over(orphan) == 2
    assert not orphan.exists()
    # Behind this spool's own lines; the line cut short was never reported kept.
    assert mine.items() == ["a", "b", "c"]
    assert mine.take_over(orphan) == 0  # gone already
    mine.close()


def test_a_spool_in_use_is_not_taken_over(tmp_path: Path) -> None:
    mine = spool(tmp_path / "log-0.spool")
    running = spool(tmp_path / "log-1.spool")
    running.append("x")
    assert mine.take_over(running.path) == 0
    assert running.items() == ["x"]
    assert mine.items() == []
    running.close()
    mine.close()
