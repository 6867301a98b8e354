"""The services' event loop: uvloop when installed or asked for, asyncio's on request."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from emma.runtime import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_and_uvloop_run_on_uvloop_and_asyncio_on_asyncio() -> None:
    assert eventloop.loop_name("auto") == "uvloop"  # a dependency, so installed here
    assert eventloop.run(_loop_module(), "uvloop").startswith("uvloop")
    assert eventloop.run(_loop_module(), "asyncio").startswith("asyncio")


def test_the_variable_chooses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.loop_name() == "asyncio"
    monkeypatch.setenv(eventloop.ENV, " UVLOOP ")
    assert eventloop.loop_name() == "uvloop"
    monkeypatch.setenv(eventloop.ENV, "trio")
    with pytest.raises(ValueError, match="EMMA_EVENT_LOOP"):
        eventloop.loop_name()


def test_a_service_with_an_unknown_loop_exits_2_naming_the_variable() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "emma.context", "--port", "0"],
        env={"PATH": "/usr/bin:/bin", "EMMA_EVENT_LOOP": "trio"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 2
    assert "EMMA_EVENT_LOOP" in process.stderr
