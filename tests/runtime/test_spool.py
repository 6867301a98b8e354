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
