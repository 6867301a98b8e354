"""Every Redis the deploy files start keeps an append-only file synced every second, as the
README's Durability section states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _containers(document: Any) -> Iterator[dict[str, Any]]:
    """Every container spec anywhere in a manifest."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(document, list):
        for item in document:
            yield from _containers(item)


def redis_commands() -> list[tuple[str, list[str]]]:
    """(where, command line) of each redis-server the compose file and the manifests run."""
    found = []
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        if str(service.get("image", "")).startswith("redis"):
            found.append((f"compose.yaml: {name}", [str(a) for a in service.get("command", [])]))
    for path in sorted((DEPLOY / "k8s").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            for container in _containers(document):
                command = [str(part) for part in container.get("command", [])]
                # The image's entrypoint runs redis-server; a job running redis-cli is not one.
                serves = not command or command[0] == "redis-server"
                if str(container.get("image", "")).startswith("redis") and serves:
                    line = [*command, *container.get("args", [])]
                    found.append((f"{path.relative_to(DEPLOY)}: {container['name']}", line))
    return found


def test_the_deploy_files_run_redis() -> None:
    places = [where for where, _ in redis_commands()]
    assert any(p.startswith("compose.yaml") for p in places)
    assert any("base" in p for p in places) and any("production" in p for p in places)


@pytest.mark.parametrize(("where", "command"), redis_commands())
def test_every_redis_keeps_an_aof_synced_every_second(where: str, command: list[str]) -> None:
    def value(flag: str) -> str | None:
        return command[command.index(flag) + 1] if flag in command else None

    assert value("--appendonly") == "yes", where
    assert value("--appendfsync") == "everysec", where
