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
from emma.triggers.config import TriggerConfig
from emma.triggers.rules import load_rules

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ["dev", "production"]
# The oldest Kubernetes the manifests promise to work on (native gRPC probes are GA in 1.27).
KUBERNETES_VERSION = "1.30.0"
SERVICE_PORTS = {
    "emma-profile": (ProfileConfig, 50052),
    "emma-context": (ContextConfig, 50053),
    "emma-decision": (DecisionConfig, 50051),
}

# Every Deployment: its config (ports and metrics port) and the health-check name its
# readiness probe asks for (module emma.<name>.server's SERVICE_NAME).
WORKLOADS = {
    "emma-decision": (DecisionConfig, "emma.decision.server"),
    "emma-profile": (ProfileConfig, "emma.profile.server"),
    "emma-context": (ContextConfig, "emma.context.server"),
    "emma-learner": (LearnerConfig, "emma.learner"),
    "emma-triggers": (TriggerConfig, "emma.triggers.server"),
}
# Where the production overlay mounts the Secret emma-tls.
TLS_DIR = "/etc/emma/tls"

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
        for config in (DecisionConfig, ProfileConfig, ContextConfig, LearnerConfig, TriggerConfig)
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
    assert set(deployments) == set(WORKLOADS)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert "memory" in container["resources"]["limits"], name
        # Production turns TLS on, which native gRPC probes cannot speak: `emma health`.
        kind = "exec" if overlay == "production" else "grpc"
        assert kind in container["readinessProbe"], name
        assert kind in container["livenessProbe"], name


@needs_kubectl
def test_probes_and_services_use_the_real_ports_and_health_names() -> None:
    # Native gRPC probes (production's TLS probes: test_production_probes_speak_tls...).
    resources = render("dev")
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
        assert container["readinessProbe"]["grpc"]["port"] == port
        assert container["livenessProbe"]["grpc"]["port"] == port
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
    for key in ("EMMA_PROFILE_ADDR", "EMMA_CONTEXT_ADDR", "EMMA_DECISION_ADDR"):
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
    # The decision service reads the same profiles in process; its log stays on one Redis.
    decision = by_kind(resources, "Deployment")["emma-decision"]
    decision_env = {
        e["name"]: e.get("value")
        for e in decision["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert decision_env["EMMA_PROFILE_REDIS_URL"] == env["EMMA_REDIS_URL"]
    assert "EMMA_REDIS_URL" not in decision_env
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
    assert files == {"config/catalog.yaml", "config/stores.yaml", "config/rules.yaml"}
    assert load_rules(config / "rules.yaml").rules


def _config_port(config: type, field_name: str) -> int:
    return int(next(f for f in dataclasses.fields(config) if f.name == field_name).default)


def _settings(resources: list[dict[str, Any]]) -> dict[str, str]:
    (settings,) = [
        r
        for r in resources
        if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("emma-settings")
    ]
    return dict(settings["data"])


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_declares_its_metrics_port_and_prometheus_finds_it(overlay: str) -> None:
    resources = render(overlay)
    settings = _settings(resources)
    for name, deployment in by_kind(resources, "Deployment").items():
        config, _ = WORKLOADS[name]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        env_name = next(
            f.metadata["env"] for f in dataclasses.fields(config) if f.name == "metrics_port"
        )
        # The port the process serves /metrics on: the env, else the config's default.
        expected = int(
            env.get(env_name) or settings.get(env_name) or _config_port(config, "metrics_port")
        )
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == expected, name
        host_name = next(f.metadata["env"] for f in dataclasses.fields(config) if f.name == "host")
        # The kubelet and Prometheus reach the pod's IP: the process must listen beyond loopback.
        assert (env.get(host_name) or settings.get(host_name)) == "0.0.0.0", name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(expected), name
        assert annotations["prometheus.io/path"] == "/metrics", name


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_trigger_engine_runs_with_its_rules_and_the_mesh_addresses(overlay: str) -> None:
    resources = render(overlay)
    settings = _settings(resources)
    triggers = by_kind(resources, "Deployment")["emma-triggers"]
    (container,) = triggers["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "emma.triggers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == _config_port(TriggerConfig, "port")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert settings["EMMA_TRIGGER_RULES"] == f"{mounts['files']}/rules.yaml"
    for key in ("EMMA_PROFILE_ADDR", "EMMA_CONTEXT_ADDR", "EMMA_DECISION_ADDR"):
        assert key in settings
    budgets = by_kind(resources, "PodDisruptionBudget")
    if overlay == "production":
        assert budgets["emma-triggers"]["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": "emma-triggers"
        }


@needs_kubectl
def test_production_probes_speak_tls_through_emma_health() -> None:
    from emma.cli.main import build_parser

    deployments = by_kind(render("production"), "Deployment")
    for name, deployment in deployments.items():
        config, module_name = WORKLOADS[name]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        # TLS on the server and on the calls to the mesh, from the mounted Secret.
        assert env["EMMA_TLS_CERT"].startswith(TLS_DIR + "/"), name
        assert env["EMMA_MESH_TLS_CA"].startswith(TLS_DIR + "/"), name
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts[TLS_DIR]]["secret"]["secretName"] == "emma-tls", name
        port = _config_port(config, "port")
        module = __import__(module_name, fromlist=["SERVICE_NAME"])
        for probe, service in (("readinessProbe", module.SERVICE_NAME), ("livenessProbe", "")):
            command = container[probe]["exec"]["command"]
            assert command[:2] == ["emma", "health"], (name, probe)
            # The command parses as `emma health` does, with the real port and health name.
            args = build_parser().parse_args(command[1:])
            assert args.address == f"127.0.0.1:{port}", (name, probe)
            assert args.service == service, (name, probe)
            assert args.tls_server_name == name, (name, probe)
            for path in (args.tls_ca, args.tls_cert, args.tls_key):
                assert str(path).startswith(TLS_DIR + "/"), (name, probe)
            assert container[probe]["timeoutSeconds"] >= 5, (name, probe)
