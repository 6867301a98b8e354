"""The Kubernetes manifests render with kustomize, match the API schemas and fit the services."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from emma.context.config import ContextConfig
from emma.context.stores import load_stores
from emma.decision.catalog import load_catalog
from emma.decision.config import DecisionConfig
from emma.learner.config import LearnerConfig
from emma.profile.config import ProfileConfig

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ["dev", "production"]
# The oldest Kubernetes the manifests promise to work on (native gRPC probes are GA in 1.27).
KUBERNETES_VERSION = "1.30.0"
SERVICE_PORTS = {
    "emma-profile": (ProfileConfig, 50052),
    "emma-context": (ContextConfig, 50053),
    "emma-decision": (DecisionConfig, 50051),
}

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed"
)


def render(overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def emma_settings() -> set[str]:
    return {
        field.metadata["env"]
        for config in (DecisionConfig, ProfileConfig, ContextConfig, LearnerConfig)
        for field in dataclasses.fields(config)
        if "env" in field.metadata
    }


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_matches_the_kubernetes_schema(overlay: str) -> None:
    resources = render(overlay)
    assert len(resources) > 10
    for resource in resources:
        # strict: an unknown or misspelt field is an error, not silently dropped by the API.
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_are_probed_limited_and_unprivileged(overlay: str) -> None:
    deployments = by_kind(render(overlay), "Deployment")
    assert set(deployments) == {*SERVICE_PORTS, "emma-learner"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert "memory" in container["resources"]["limits"], name
        assert "grpc" in container["readinessProbe"], name
        assert "grpc" in container["livenessProbe"], name


@needs_kubectl
def test_probes_and_services_use_the_real_ports_and_health_names() -> None:
    resources = render("production")
    deployments = by_kind(resources, "Deployment")
    services = by_kind(resources, "Service")
    for name, (config, port) in SERVICE_PORTS.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        port_field = next(f for f in dataclasses.fields(config) if f.name == "port")
        assert port_field.default == port
        assert container["ports"][0]["containerPort"] == port
        service_name = container["readinessProbe"]["grpc"]["service"]
        module = __import__(f"emma.{name.removeprefix('emma-')}.server", fromlist=["x"])
        assert service_name == module.SERVICE_NAME
        # Headless, so gRPC clients see every pod and balance calls across them.
        assert services[name]["spec"]["clusterIP"] == "None"
        assert services[name]["spec"]["ports"][0]["port"] == port


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_are_real_and_mesh_addresses_name_real_services(overlay: str) -> None:
    resources = render(overlay)
    (settings,) = [
        r
        for r in resources
        if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("emma-settings")
    ]
    known = emma_settings()
    emma_keys = {key for key in settings["data"] if key.startswith("EMMA_")}
    assert emma_keys - known == set()
    services = by_kind(resources, "Service")
    for key in ("EMMA_PROFILE_ADDR", "EMMA_CONTEXT_ADDR"):
        host, port = settings["data"][key].removeprefix("dns:///").split(":")
        assert host in services, key
        assert int(port) == services[host]["spec"]["ports"][0]["port"], key


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_and_disruption_budgets_point_at_existing_workloads(overlay: str) -> None:
    resources = render(overlay)
    workloads = {**by_kind(resources, "Deployment"), **by_kind(resources, "StatefulSet")}
    for hpa in by_kind(resources, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in workloads
    labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads.values()]
    for pdb in by_kind(resources, "PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= pod_labels.items() for pod_labels in labels), pdb


@needs_kubectl
def test_production_keeps_profiles_on_a_redis_cluster_with_aof() -> None:
    resources = render("production")
    profile = by_kind(resources, "Deployment")["emma-profile"]
    env = {
        e["name"]: e.get("value")
        for e in profile["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["EMMA_REDIS_URL"].startswith(
        "redis+cluster://emma-redis-cluster-0.emma-redis-cluster"
    )
    for statefulset in by_kind(resources, "StatefulSet").values():
        args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--appendonly") + 1] == "yes"
        assert args[args.index("--appendfsync") + 1] == "everysec"


def test_the_shipped_catalog_and_stores_load() -> None:
    config = K8S / "base" / "config"
    catalog = load_catalog(config / "catalog.yaml")
    assert catalog.offers
    assert len(load_stores(config / "stores.yaml")) >= 1
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    files = {f for gen in kustomization["configMapGenerator"] for f in gen.get("files", [])}
    assert files == {"config/catalog.yaml", "config/stores.yaml"}
