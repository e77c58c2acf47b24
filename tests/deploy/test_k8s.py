"""deploy/k8s: every manifest against the Kubernetes schemas bundled with kubernetes-validate
(offline, strict: unknown fields fail), then what the schemas cannot know: the pieces agree
with each other (selectors, ports, names), with the server (probe paths, REALTIME_* settings it
reads, metric names it exports) and with the drain (the grace period covers the preStop sleep,
the drain and the processes' stop). The ServiceMonitor and the Kustomization have no bundled
schema: their fields are checked here by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from realtime.config import EngineConfig, ServerConfig, load_config
from realtime.server.metrics import ServerMetrics

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES = "1.30"  # the oldest version the manifests are checked against
NOT_SCHEMAS = {"kustomization.yaml"}  # kustomize's own file, not an API object
CUSTOM = {"monitoring.coreos.com/v1"}  # custom resources: checked by hand below


def documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name in NOT_SCHEMAS:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for _, d in documents()
             if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def container() -> dict[str, Any]:
    (c,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


SCHEMA_CHECKED = [(n, d) for n, d in documents() if d["apiVersion"] not in CUSTOM]


@pytest.mark.parametrize("name,doc", SCHEMA_CHECKED,
                         ids=[f"{n}:{d['kind']}" for n, d in SCHEMA_CHECKED])
def test_against_the_kubernetes_schemas(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_every_manifest_is_checked() -> None:
    kinds = sorted(d["kind"] for _, d in documents())
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress",
                     "PodDisruptionBudget", "Service", "Service", "ServiceMonitor"]
    assert [d["kind"] for _, d in documents() if d["apiVersion"] in CUSTOM] == [
        "ServiceMonitor"]  # test_the_service_monitor


def test_a_gpu_per_pod_probes_and_settings_the_server_reads() -> None:
    c = container()
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["resources"]["requests"]["nvidia.com/gpu"] == 1
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["args"][c["args"].index("--port") + 1] == str(ports["http"])
    env = {e["name"]: e["value"] for e in c["env"]}
    read = {f"REALTIME_{f.name.upper()}" for cls in (ServerConfig, EngineConfig)
            for f in fields(cls)}
    assert set(env) <= read, set(env) - read  # every REALTIME_* name is one the server reads
    config = load_config(env=env)
    assert config.engine.device == "cuda" and config.workers == 7
    cpus = float(c["resources"]["requests"]["cpu"])
    assert config.workers == cpus - 1  # the cores less one for the engine process


def test_the_grace_period_covers_the_drain() -> None:
    """preStop sleep + drain_timeout_s + the workers' closing (up to 10 s more) and the engine
    process's stop (up to 15 s; realtime/server/processes.py) must end before SIGKILL."""
    spec = one("Deployment")["spec"]["template"]["spec"]
    c = container()
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    drain = load_config(env={e["name"]: e["value"] for e in c["env"]}).drain_timeout_s
    assert 0 < pre_stop <= 10
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain + 10 + 15


def test_services_pdb_and_autoscaler_point_at_the_pods() -> None:
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    port_names = {p["name"] for p in container()["ports"]}
    for service in (one("Service", "realtime"), one("Service", "realtime-pods")):
        assert matches(service["spec"]["selector"], pod_labels)
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert one("Service", "realtime-pods")["spec"]["clusterIP"] == "None"  # headless
    assert one("Service", "realtime")["metadata"]["annotations"][
        "haproxy.org/load-balance"] == "leastconn"
    backend = one("Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "realtime"
    pdb = one("PodDisruptionBudget")
    assert matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    hpa = one("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2  # a drain or a crash leaves one to take sessions


def test_the_autoscaler_metric_is_served_by_the_adapter_and_exported() -> None:
    (metric,) = one("HorizontalPodAutoscaler")["spec"]["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    adapter = yaml.safe_load(one("ConfigMap", "prometheus-adapter")["data"]["config.yaml"])
    rules = {r["name"]["as"]: r for r in adapter["rules"]}
    assert set(rules) == {"realtime_sessions", "realtime_engine_queue_depth"}
    exported = {m.name for m in ServerMetrics().registry.collect()}
    for served, rule in rules.items():
        series = rule["seriesQuery"].split("{")[0]
        assert series in exported and served == series
        assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"},
                                                  "pod": {"resource": "pod"}}
        assert "<<.Series>>" in rule["metricsQuery"] and "<<.GroupBy>>" in rule["metricsQuery"]
    assert name in rules
    # The session cap a pod enforces is well above the target the autoscaler keeps.
    config = load_config(env={e["name"]: e["value"] for e in container()["env"]})
    target = float(metric["pods"]["target"]["averageValue"])
    assert target < 0.6 * config.max_sessions * (config.workers or 1)


def test_the_service_monitor() -> None:
    """A custom resource (Prometheus Operator): no bundled schema, so its fields by hand."""
    monitor = one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    selected = [s for s in (one("Service", "realtime"), one("Service", "realtime-pods"))
                if matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in selected] == ["realtime"]  # each pod scraped once
    (endpoint,) = monitor["spec"]["endpoints"]
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}


def test_the_pod_runs_the_image_as_it_is_built() -> None:
    """The Dockerfile's image (CUDA variant, named by the kustomization), as its user, with a
    read-only root: writable only the hub cache volume the image declares, and /tmp."""
    c = container()
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert image["name"] == c["image"] and image["newTag"].endswith("-cuda")
    assert "command" not in c and c["args"][0] == "serve"  # the image's entrypoint: realtime
    dockerfile = (K8S.parents[1] / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+)$", dockerfile, re.M)
    volume = re.search(r'^VOLUME \["([^"]+)"\]$', dockerfile, re.M)
    assert user and volume
    security = c["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
    assert security["runAsUser"] == int(user.group(1))
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {volume.group(1), "/tmp"}


def test_the_kustomization_lists_the_manifests() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    assert all((K8S / f).exists() for f in listed)
    # everything but the adapter's rules, which go to the adapter's own ConfigMap
    assert listed == {p.name for p in K8S.glob("*.yaml")} - NOT_SCHEMAS - {
        "prometheus-adapter.yaml"}
