"""deploy/k8s: schema-valid manifests that agree with the code.

Core kinds are validated against the Kubernetes OpenAPI schemas shipped in the
``kubernetes-validate`` package (strict: unknown fields fail); KEDA's
ScaledObject is a CRD without a bundled schema, so its structure is checked
here by hand. Rendering uses ``kubectl kustomize`` when kubectl is installed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from stream.contracts.topics import TopicNames
from tests.deploy.manifests import (
    DEPLOY,
    KAFKA_SETTINGS,
    SERVICES,
    ServiceSpec,
    find,
    import_class,
    kustomize,
    path_settings,
    settings_from_env,
)

#: Kinds whose schema is not part of Kubernetes itself.
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "PodMonitor"}
K8S_VERSION = "1.30.0"

Doc = dict[str, Any]


def _container(deployment: Doc) -> Doc:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value", "<from>") for e in container.get("env", [])}


@pytest.mark.parametrize("overlay", ["base", "overlays/gpu"])
def test_manifests_match_the_kubernetes_schema(overlay: str, k8s_base: list[Doc]) -> None:
    validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (dev extra) is not installed"
    )
    docs = kustomize(DEPLOY / "k8s" / overlay)
    if docs is None:
        if overlay != "base":
            pytest.skip("kubectl is not installed: the GPU overlay's patches need kustomize")
        docs = k8s_base
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            validate.validate(doc, K8S_VERSION, strict=True)
        except validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_copies_of_shared_files_are_identical() -> None:
    """kustomize loads files only below its root, so base/files holds copies."""
    files = DEPLOY / "k8s" / "base" / "files"
    assert (files / "sources.yaml").read_text() == (DEPLOY / "config" / "sources.yaml").read_text()
    assert (files / "alert-rules.yaml").read_text() == (
        DEPLOY / "config" / "alert-rules.yaml"
    ).read_text()
    assert (files / "create-topics.sh").read_text() == (
        DEPLOY / "kafka" / "create-topics.sh"
    ).read_text()


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_deployment_matches_the_service(
    k8s_base: list[Doc], spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = find(k8s_base, "Deployment", spec.name)
    container = _container(deployment)
    assert container["args"] == [spec.command]
    (port,) = container["ports"]
    assert port == {"name": "metrics", "containerPort": spec.metrics_port, "protocol": "TCP"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(spec.metrics_port)
    parsed, _ = settings_from_env(spec, _env(container), monkeypatch)
    assert parsed.metrics_port == spec.metrics_port
    assert parsed.metrics_host == "0.0.0.0"
    service = find(k8s_base, "Service", f"{spec.name}-metrics")
    assert service["spec"]["ports"][0]["port"] == spec.metrics_port


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_pods_are_hardened_with_probes_and_limits(k8s_base: list[Doc], spec: ServiceSpec) -> None:
    pod = find(k8s_base, "Deployment", spec.name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    container = _container({"spec": {"template": {"spec": pod}}})
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, probe
    assert set(container["resources"]) == {"requests", "limits"}
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container.get("volumeMounts", [])}
    for name, value in path_settings(spec, _env(container)).items():
        mount = [m for m in mounts if value.startswith(m)]
        assert mount, f"{name}={value} is on no volume"
        read_only = name.endswith(("_FILE", "RULES_PATH"))
        assert mounts[mount[0]] == read_only, f"{name}: {mount[0]} read-only should be {read_only}"


def test_kafka_configmap_names_kafka_settings(k8s_base: list[Doc]) -> None:
    kafka = import_class(KAFKA_SETTINGS)
    maps = [
        d
        for d in k8s_base
        if d["kind"] == "ConfigMap" and "finsentinel-kafka" in d["metadata"]["name"]
    ]
    if not maps:
        pytest.skip("kubectl is not installed: configMapGenerator output is not rendered")
    (config,) = maps
    for key in config["data"]:
        assert key.removeprefix("KAFKA_").lower() in kafka.model_fields, key


def test_keda_scales_the_scorer_on_its_lag(k8s_base: list[Doc]) -> None:
    scaled = find(k8s_base, "ScaledObject", "scorer")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "scorer"
    find(k8s_base, "Deployment", "scorer")
    scorer_settings = import_class("stream.scorer.settings:ScorerSettings")
    group = _env(_container(find(k8s_base, "Deployment", "scorer")))["FINSENTINEL_SCORER_GROUP_ID"]
    assert group == scorer_settings.model_fields["group_id"].default
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"kafka"}
    assert sorted(t["metadata"]["topic"] for t in triggers) == sorted(TopicNames().raw)
    for trigger in triggers:
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == group
        assert int(meta["lagThreshold"]) > 0
        assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata values are strings"
    script = (DEPLOY / "kafka" / "create-topics.sh").read_text()
    partitions = int(re.search(r'"raw\.news (\d+) ', script).group(1))  # type: ignore[union-attr]
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= partitions


def test_gpu_overlay_requests_a_gpu_for_the_cuda_image(k8s_gpu: list[Doc]) -> None:
    scorer = find(k8s_gpu, "Deployment", "scorer")
    container = _container(scorer)
    assert container["image"].endswith("-cuda")
    for kind in ("requests", "limits"):
        assert container["resources"][kind]["nvidia.com/gpu"] == 1
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), "the patch duplicated an environment variable"
    env = _env(container)
    assert env["FINSENTINEL_SCORER_PROVIDER"] == "cuda"
    assert env["FINSENTINEL_SCORER_REQUIRE_GPU"] == "true"
    scorer_settings = import_class("stream.scorer.settings:ScorerSettings")
    scorer_settings(
        **{
            k.removeprefix("FINSENTINEL_SCORER_").lower(): v
            for k, v in env.items()
            if k.startswith("FINSENTINEL_SCORER_")
        }
    )
    tolerations = scorer["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    for other in ("crawler", "alerts", "archive"):
        assert _container(find(k8s_gpu, "Deployment", other))["image"].endswith("-cpu")
    assert find(k8s_gpu, "ScaledObject", "scorer")["spec"]["maxReplicaCount"] >= 1


def test_topics_job_uses_the_shared_script(k8s_base: list[Doc]) -> None:
    job = find(k8s_base, "Job", "create-topics")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("apache/kafka:")
    assert container["command"] == ["bash", "/opt/finsentinel/create-topics.sh"]


def test_podmonitor_names_jobs_as_the_rules_expect(k8s_base: list[Doc]) -> None:
    """The job label becomes finsentinel-<component>: the jobs in the rules and dashboards."""
    docs = kustomize(DEPLOY / "k8s" / "monitoring")
    if docs is None:
        pytest.skip("kubectl is not installed")
    (monitor,) = docs
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    (job,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
    assert job["sourceLabels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    for spec in SERVICES:
        pod = find(k8s_base, "Deployment", spec.name)["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod.items(), f"{spec.name} pods are not selected"
        component = pod["app.kubernetes.io/component"]
        assert re.sub(job["regex"], job["replacement"].replace("$1", r"\1"), component) == (
            spec.prometheus_job
        )
