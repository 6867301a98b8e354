"""Data files: the fast YAML reader returns exactly what PyYAML's safe loader returns."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emma.context.datafiles import DataFileError, read_data

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    # Texts PyYAML would resolve to other types when plain: dumped quoted, must stay texts.
    st.sampled_from(["yes", "off", "~", "0x1f", "1_000", "12:30", "2026-12-24", "1e3", "<<"]),
    st.dates(),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=4),
    ),
    max_leaves=25,
)


def _same(a: Any, b: Any) -> bool:
    """Equal with equal types throughout; NaN is the same as NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _read(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "data.yaml"
    path.write_text(text, encoding="utf-8")
    return read_data(path)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=DOCUMENTS, flow=st.booleans())
def test_any_dumped_document_reads_as_the_safe_loader_reads_it(
    tmp_path: Path, document: Any, flow: bool
) -> None:
    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    assert _same(_read(tmp_path, text), yaml.safe_load(text))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain text\n",
        "a: 1\nb: 1.5\nc: .inf\nd: -.nan\ne: yes\nf: ~\ng: 0o17\nh: 0x1F\ni: 1_000\nj: 1:30\n",
        "when: 2026-12-24\nstamp: 2026-12-24T10:00:00+01:00\nquoted: '2026-12-24'\n",
        # Anchors and aliases share the object, as with the safe loader.
        "hours: &h {mon: ['07:00-20:00']}\nstores:\n  - {id: a, opening_hours: *h}\n"
        "  - {id: b, opening_hours: *h}\nname: &n Emma\nalias: *n\n",
        # Merge keys and explicit tags go to the full loader.
        "base: &b {geofence_m: 150}\nstore:\n  <<: *b\n  id: x\n",
        "a: !!str 12\nb: !!float 3\nc: !!set {x, y}\n",
        "- [1, 2]\n- {a: [b, {c: d}]}\n",
        "same: 1\nsame: 2\n",
        "--- 1\n",
        "'<<': 1\n",
    ],
)
def test_documents_read_as_the_safe_loader_reads_them(tmp_path: Path, text: str) -> None:
    assert _same(_read(tmp_path, text), yaml.safe_load(text))


def test_aliases_share_one_object(tmp_path: Path) -> None:
    data = _read(tmp_path, "hours: &h {mon: [x]}\nstores: [{h: *h}, {h: *h}]\n")
    assert data["stores"][0]["h"] is data["stores"][1]["h"] is data["hours"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", "expected ',' or ']'"),
        ("a: *nowhere\n", "found undefined alias"),
        ("--- 1\n--- 2\n", "expected a single document"),
        ("? [1, 2]\n: x\n", "found unhashable key"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
    ],
)
def test_malformed_documents_fail_as_with_the_safe_loader(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DataFileError, match=message):
        _read(tmp_path, text)


def test_plain_files_do_not_need_the_full_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the full loader was used")

    monkeypatch.setattr(yaml, "load", refuse)
    assert _read(tmp_path, "stores:\n  - {id: a, latitude: 48.1, hours: [x]}\n") == {
        "stores": [{"id": "a", "latitude": 48.1, "hours": ["x"]}]
    }
