"""A service process as operators run it: clear start-up errors, clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path


def _start(args: list[str], env_extra: dict[str, str]) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "EMMA_LOG_LEVEL": "INFO", **env_extra}
    return subprocess.Popen(
        [sys.executable, "-m", *args], stderr=subprocess.PIPE, text=True, env=env
    )


def test_bad_config_value_exits_2_naming_the_variable() -> None:
    process = _start(["emma.context"], {"EMMA_CONTEXT_PORT": "not-a-port"})
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "EMMA_CONTEXT_PORT" in stderr


def test_bad_data_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    stores = tmp_path / "stores.yaml"
    stores.write_text("stores:\n  - id: x\n")
    process = _start(["emma.context", "--port", "0"], {"EMMA_STORES": str(stores)})
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "stores[0]" in stderr
    assert "Traceback" not in stderr


def test_sigterm_stops_the_service_gracefully_with_exit_0() -> None:
    process = _start(["emma.context", "--port", "0"], {})
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    lines: list[dict[str, object]] = []
    while not any(line.get("message") == "serving" for line in lines):
        assert time.monotonic() < deadline, "service did not report serving"
        raw = process.stderr.readline()
        assert raw, "service exited before serving"
        lines.append(json.loads(raw))
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 0
    messages = [json.loads(raw)["message"] for raw in rest.splitlines() if raw.startswith("{")]
    assert messages[-2:] == ["stopping", "stopped"]
