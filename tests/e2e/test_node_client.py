"""The Node.js client (clients/node) against the running mesh: the API serves more than Python."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from emma.cli.mesh import Mesh

NODE_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="Node.js is not installed"
)


@pytest.fixture(scope="module")
def node_client() -> Path:
    """clients/node with its locked dependencies installed (npm ci, once)."""
    if not (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_CLIENT,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_CLIENT


def test_node_client_decides_activates_and_rewards(node_client: Path, mesh: Mesh) -> None:
    result = subprocess.run(
        ["node", "--test", "test/"],
        cwd=node_client,
        env={**os.environ, "EMMA_DECISION_ADDR": mesh.decision_address},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
    assert "# pass 4" in result.stdout


def test_node_till_example_runs(node_client: Path, mesh: Mesh) -> None:
    result = subprocess.run(
        ["node", "examples/till.js", mesh.decision_address, "1001"],
        cwd=node_client,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("offer ")
