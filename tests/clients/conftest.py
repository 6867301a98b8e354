"""The whole mesh as `emma up` starts it, for the SDK's examples and its installed package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emma.cli.mesh import Mesh, MeshPorts
from emma.demo.loader import load_demo_customers


@pytest.fixture(scope="session")
def client_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Redis and every service as processes on free ports, demo customers loaded."""
    run_dir = tmp_path_factory.mktemp("emma-client-run")
    with Mesh(ports=MeshPorts.free(), run_dir=run_dir) as mesh:
        load_demo_customers(mesh.profile_address)
        yield mesh
