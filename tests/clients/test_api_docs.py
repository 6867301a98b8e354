"""docs/api.md is made from the protos' descriptors and comments, and every part has a comment."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen_api_docs() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(
        "gen_api_docs", str(ROOT / "scripts" / "gen-api-docs")
    )
    spec = importlib.util.spec_from_loader("gen_api_docs", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_every_service_rpc_message_and_enum_has_a_comment(gen_api_docs: ModuleType) -> None:
    missing = []
    for proto in gen_api_docs.descriptor_set().file:
        if not proto.name.startswith("emma/"):
            continue
        comments = gen_api_docs.comments_of(proto)
        for i, service in enumerate(proto.service):
            if (6, i) not in comments:
                missing.append(service.name)
            missing += [
                f"{service.name}.{m.name}"
                for j, m in enumerate(service.method)
                if (6, i, 2, j) not in comments
            ]
        missing += [m.name for i, m in enumerate(proto.message_type) if (4, i) not in comments]
        missing += [e.name for i, e in enumerate(proto.enum_type) if (5, i) not in comments]
    assert missing == []


def test_docs_show_comments_types_and_links(gen_api_docs: ModuleType) -> None:
    text = gen_api_docs.render()
    assert text == (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert "| `Decide` | [DecideRequest](#emma-decision-v1-deciderequest) |" in text
    assert "| `RecordEventStream` | stream [RecordEventStreamRequest]" in text
    assert "| `payload` | map<`string`, `string`> | 5 |" in text
    assert "| `open_offers` | repeated [OpenOffer](#emma-decision-v1-openoffer) | 12 |" in text
    assert "One of `payload`." in text  # Event's oneof
    for anchor in ("emma-common-v1-customerref", "emma-profile-v1-walletoffer"):
        assert f'<a id="{anchor}"></a>' in text
