"""Kubernetes manifests: schema-valid (kubernetes-validate, strict), the KEDA
ScaledObject against its CRD's fields, and the contracts that matter here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from imgenhance.catalog import Catalog
from tests.deploy.conftest import DEPLOY, REPO

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.31.0"

# The fields of keda.sh/v1alpha1 ScaledObject this project uses (from KEDA's CRD).
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "apiVersion": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                            "authenticationRef": {"type": "object"},
                        },
                    },
                },
            },
        },
    },
}
TRIGGER_KEYS = {"redis": {"address", "listName", "listLength"}, "prometheus": {"serverAddress", "query", "threshold"}}


def documents() -> list[tuple[Path, dict[str, Any]]]:
    files = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    return [(K8S / f, doc) for f in files for doc in yaml.safe_load_all((K8S / f).read_text()) if doc]


def by_kind(kind: str, name: str) -> dict[str, Any]:
    return next(doc for _, doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name)


@pytest.mark.parametrize("path", sorted({p for p, _ in documents()}), ids=lambda p: p.name)
def test_core_resources_pass_strict_schema_validation(path: Path) -> None:
    import kubernetes_validate

    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["apiVersion"] != "keda.sh/v1alpha1":
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_scaled_object_matches_keda_and_watches_every_queue() -> None:
    scaled = by_kind("ScaledObject", "worker")
    jsonschema.validate(scaled, SCALED_OBJECT)
    for trigger in scaled["spec"]["triggers"]:
        assert TRIGGER_KEYS[trigger["type"]] <= set(trigger["metadata"]), trigger
    lists = {t["metadata"]["listName"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"}
    assert lists == {f"rq:queue:{task}" for task in Catalog.load(REPO / "models").tasks()}
    assert scaled["spec"]["scaleTargetRef"]["name"] == by_kind("Deployment", "worker")["metadata"]["name"]


def test_worker_pods_get_a_gpu_and_time_to_finish_their_job() -> None:
    pod = by_kind("Deployment", "worker")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    timeout = int(by_kind("ConfigMap", "imgenhance")["data"]["IMGENHANCE_JOB_TIMEOUT_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > timeout
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {p["name"] for p in container["ports"]} == {"metrics"}
    assert {"startupProbe", "livenessProbe"} <= set(container)


def test_gateway_probes_and_autoscaling() -> None:
    pod = by_kind("Deployment", "gateway")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container)
    # readiness must not depend on workers, or scale-to-zero would deadlock
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz?require_workers=false"
    hpa = by_kind("HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gateway" and hpa["spec"]["minReplicas"] >= 2


def test_every_pod_runs_as_non_root_without_privilege_escalation() -> None:
    for _, doc in documents():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            spec = doc["spec"]["template"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
            for container in spec["containers"]:
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
