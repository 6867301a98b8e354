"""clients/python is its own package: its wheel holds the SDK and the generated code, nothing of
the services, and installed into a fresh venv beside only grpcio and protobuf it calls the mesh."""

from __future__ import annotations

import email
import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from emma.cli.mesh import Mesh

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's wheel, built offline from a copy (building never litters the tree)."""
    work = tmp_path_factory.mktemp("emma-client-build")
    source = work / "src"
    shutil.copytree(
        CLIENT, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "-w", str(work / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (built,) = (work / "dist").glob("emma_client-*.whl")
    return built


def test_wheel_holds_the_sdk_and_its_generated_code_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"emma_client", f"{wheel.name.split('-py3')[0]}.dist-info"}
    for module in ("client.py", "aio.py", "profile.py", "profile_aio.py", "py.typed"):
        assert f"emma_client/{module}" in names
    for service in ("common", "decision", "profile", "context"):
        generated = f"emma_client/protos/emma/{service}/v1/{service}_pb2"
        assert {f"{generated}.py", f"{generated}.pyi", f"{generated}_grpc.py"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))
    )
    requires = email.message_from_bytes(metadata).get_all("Requires-Dist")
    assert sorted(requires) == ["grpcio>=1.85.1", "protobuf>=7.35.1"]


def installed_closure(names: list[str]) -> set[Path]:
    """The files and folders (top level of site-packages) of these distributions and of
    everything they require, as installed here."""
    found: set[Path] = set()
    seen: set[str] = set()
    while names:
        dist = importlib.metadata.distribution(names.pop())
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        for file in dist.files or []:
            top = file.parts[0]
            if top not in ("__pycache__", "..") and not top.endswith(".dist-info"):
                found.add(SITE_PACKAGES / top)
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                names.append(requirement.name)
    return found


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed and, from this machine, only grpcio and protobuf."""
    venv = tmp_path_factory.mktemp("emma-client-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    # No network here: the dependencies come from this environment, and nothing else does.
    deps = venv / "deps"
    deps.mkdir()
    for path in installed_closure(["grpcio", "protobuf"]):
        (deps / path.name).symlink_to(path)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "emma-deps.pth").write_text(f"{deps}\n")
    return python


CALL_THE_MESH = """
import importlib.util, sys
from emma_client import EmmaClient
assert importlib.util.find_spec("emma") is None, "the services must not be needed"
import emma_client
assert emma_client.__file__.startswith(sys.prefix), emma_client.__file__
with EmmaClient(sys.argv[1], deadline=10) as emma:
    decision = emma.decide("loyalty_card:1001", touchpoint="pos", store_id="berlin-mitte")
print(decision.offer_id, decision.channel, ",".join(decision.degraded) or "-")
"""


def test_installed_package_calls_the_mesh_without_the_services(
    fresh_venv: Path, client_mesh: Mesh
) -> None:
    result = subprocess.run(
        [str(fresh_venv), "-c", CALL_THE_MESH, client_mesh.decision_address],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=fresh_venv.parent,  # not the repository, whose folders would be importable
    )
    assert result.returncode == 0, result.stderr
    offer, channel, degraded = result.stdout.split()
    assert offer
    assert channel in {"receipt", "cashier_prompt", "store_screen"}
    assert degraded == "-"
