"""The Mesh supervisor and `emma up`: everything starts SERVING and nothing outlives a stop."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from emma.cli.health import check
from emma.cli.mesh import SERVICE_NAMES, Mesh, MeshPorts, start_and_report
from emma_client import EmmaClient


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def all_gone(pids: Iterable[int], timeout: float = 5.0) -> bool:
    """True once no process of `pids` exists (a dead grandchild is reaped by init shortly)."""
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_child_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "the-callers-name")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    mesh = Mesh(
        ports=MeshPorts(decision=7001, profile=7002, context=7003, learner=7004),
        redis_url="redis://127.0.0.1:7000/0",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
    )
    env = mesh.child_env("profile")
    # Each service names itself; an inherited OTEL_SERVICE_NAME would rename all three.
    assert "OTEL_SERVICE_NAME" not in env
    assert env["OTEL_TRACES_SAMPLER"] == "always_on"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"
    assert env["EMMA_PROFILE_PORT"] == "7002"
    assert env["EMMA_PROFILE_HOST"] == "127.0.0.1"
    assert env["EMMA_REDIS_URL"] == "redis://127.0.0.1:7000/0"
    decision = mesh.child_env("decision")
    assert decision["EMMA_DECISION_PORT"] == "7001"
    assert decision["EMMA_PROFILE_ADDR"] == "127.0.0.1:7002"
    assert decision["EMMA_CONTEXT_ADDR"] == "127.0.0.1:7003"
    learner = mesh.child_env("learner")
    assert (learner["EMMA_LEARNER_PORT"], learner["EMMA_REDIS_URL"]) == (
        "7004",
        "redis://127.0.0.1:7000/0",
    )


def test_mesh_serves_and_leaves_nothing_running(tmp_path: Path) -> None:
    with Mesh(ports=MeshPorts.free(), run_dir=tmp_path) as mesh:
        pids = mesh.pids
        assert set(pids) == {"profile", "context", "decision", "learner", "triggers"}
        for service, name in SERVICE_NAMES.items():
            assert check(mesh.address(service), name), service
        assert not any(gone(pid) for pid in pids.values())
        # Entering a started mesh (`with Mesh(...).start() as mesh`) starts nothing more.
        assert mesh.__enter__() is mesh and mesh.pids == pids
        assert mesh.redis_url is not None
        redis_port = int(mesh.redis_url.rsplit(":", 1)[1].split("/")[0])
        assert accepts(redis_port)
        with EmmaClient(mesh.decision_address, deadline=5) as client:
            decision = client.decide("customer_id:c-mesh-test", touchpoint="app")
        assert decision.event_id
    assert all_gone(pids.values())
    assert not accepts(redis_port)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "profile.log",
        "context.log",
        "decision.log",
        "learner.log",
        "triggers.log",
    }


def test_a_service_that_cannot_start_stops_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = MeshPorts.free()
    with socket.socket() as blocker:
        # The decision port is taken, so the decision service cannot bind and exits.
        blocker.bind(("127.0.0.1", ports.decision))
        blocker.listen()
        mesh = Mesh(ports=ports, run_dir=tmp_path, startup_timeout=20)
        started = time.monotonic()
        # What `emma up`, `emma demo` and `emma simulate` do: the MeshError, told on stderr.
        assert not start_and_report(mesh, "up", sys.stdout)
    captured = capsys.readouterr()
    assert captured.out.startswith("starting Redis, profile, context, decision")
    assert "mesh up" not in captured.out
    message = captured.err
    assert message.startswith("emma up: decision exited with code")
    assert str(tmp_path / "decision.log") in message
    # The child's own error is shown, not just "it failed".
    assert str(ports.decision) in message
    assert time.monotonic() - started < 20
    assert all_gone(mesh.pids.values())
    assert mesh.redis_url is None


def _read_lines(stream: Iterable[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _wait_for(lines: queue.Queue[str], pattern: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"no line matching {pattern!r} in {seen}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_emma_up_stops_everything_on_a_signal(tmp_path: Path, signum: int) -> None:
    ports = MeshPorts.free()
    env = {k: v for k, v in os.environ.items() if k != "EMMA_REDIS_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "emma.cli", "up", "--demo", "--run-dir", str(tmp_path)]
        + [
            f"--{name}-port={ports.of(name)}"
            for name in ("decision", "profile", "context", "learner", "triggers")
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        output = "".join(_wait_for(lines, r"^try: emma decide", timeout=30))
        assert "demo: 5 customers" in output
        pids = [int(pid) for pid in re.findall(r"pid (\d+)", output)]
        assert len(pids) == 5
        assert re.search(r"^  learner ", output, re.MULTILINE)
        assert check(f"127.0.0.1:{ports.learner}", SERVICE_NAMES["learner"])
        redis_port = int(re.search(r"redis://127\.0\.0\.1:(\d+)", output).group(1))  # type: ignore[union-attr]
        with EmmaClient(f"127.0.0.1:{ports.decision}", deadline=5) as client:
            decision = client.decide("loyalty_card:1001", touchpoint="pos", store_id="berlin-mitte")
        assert decision.offer_id
        process.send_signal(signum)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert all_gone(pids)
    assert not accepts(redis_port)
    assert not accepts(ports.decision)


def test_the_mesh_names_the_learner_as_the_learner_does() -> None:
    from emma.learner import SERVICE_NAME

    assert SERVICE_NAMES["learner"] == SERVICE_NAME
