"""kubectl 1.27, 1.29, 1.31, 1.32 and 1.33 against a real orchestra API server: `explain` (which reads
the OpenAPI v3 component schemas; 1.27's `plaintext-openapiv2` output reads /openapi/v2 as protobuf),
and `apply` (default --validate=strict: 1.27 asks /openapi/v2 whether the server validates fields),
`edit` and `diff`, none needing --validate=false."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LiveCluster

pytestmark = pytest.mark.kubectl

VERSIONS = ["1.27", "1.29", "1.31", "1.32", "1.33"]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(params=VERSIONS)
def kubectl(request: pytest.FixtureRequest, live_cluster: LiveCluster, tmp_path: Path) -> Kubectl:
    return _runner(request.param, live_cluster, tmp_path)


def _runner(version: str, live_cluster: LiveCluster, tmp_path: Path) -> Kubectl:
    binary = f"/usr/lib/google-cloud-sdk/bin/kubectl.{version}"
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is required for these tests")
    home = tmp_path / "home"  # each version its own discovery and OpenAPI cache
    home.mkdir()

    def run(*args: str, input: str | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([binary, *args], input=input, capture_output=True, text=True, timeout=60,
                              env={**live_cluster.kubectl_env(), "HOME": str(home), **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    run.version = version  # type: ignore[attr-defined]
    return run


def _namespace(kubectl: Kubectl) -> str:
    ns = "v" + kubectl.version.replace(".", "-")  # type: ignore[attr-defined]
    kubectl("create", "namespace", ns, check=False)
    return ns


def _deployment(ns: str, replicas: int, value: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": "localhost/busybox:latest", "env": [{"name": "A", "value": value}],
                 "ports": [{"containerPort": 8080}]}]}},
        },
    })


@pytest.mark.parametrize(("args", "needles"), [
    (["deployment.spec.strategy"], ["DeploymentStrategy", "rollingUpdate", "Recreate"]),
    (["pods", "--recursive"], ["containers", "livenessProbe", "nodeSelector"]),
    (["service.spec.ports"], ["targetPort", "port\t<integer> -required-", "protocol"]),
    (["hpa.spec"], ["metrics", "behavior", "scaleTargetRef"]),
    (["hpa.spec", "--api-version=autoscaling/v1"], ["targetCPUUtilizationPercentage", "scaleTargetRef"]),
    (["rc.spec"], ["selector", "template", "minReadySeconds"]),
    (["podtemplates.template"], ["PodTemplateSpec", "spec"]),
    (["cs"], ["ComponentStatus", "conditions"]),
    (["events", "--api-version=events.k8s.io/v1"], ["regarding", "reportingController", "note"]),
    (["apiservices.spec"], ["groupPriorityMinimum", "versionPriority"]),
], ids=["field", "recursive", "core-kind", "hpa-preferred-v2", "hpa-v1-served-not-stored", "rc",
        "podtemplate", "componentstatus", "events-v1-served-over-core", "apiservice"])
def test_explain(kubectl: Kubectl, args: list[str], needles: list[str]) -> None:
    out = kubectl("explain", *args).stdout
    for needle in needles:
        assert needle in out, out


def test_explain_from_openapi_v2(live_cluster: LiveCluster, tmp_path: Path) -> None:
    """Only kubectl 1.27 of these still renders from /openapi/v2 (the protobuf document)."""
    kubectl = _runner("1.27", live_cluster, tmp_path)
    out = kubectl("explain", "deployment.spec.strategy", "--output=plaintext-openapiv2").stdout
    assert "RESOURCE: strategy <Object>" in out and "rollingUpdate" in out, out


def test_apply_edit_diff_without_validate_false(kubectl: Kubectl, tmp_path: Path) -> None:
    ns = _namespace(kubectl)
    assert "created" in kubectl("apply", "-f", "-", input=_deployment(ns, 1, "1")).stdout
    changed = _deployment(ns, 2, "2")
    diff = kubectl("diff", "-f", "-", input=changed, check=False)
    assert diff.returncode == 1 and "+  replicas: 2" in diff.stdout, diff.stderr
    assert "configured" in kubectl("apply", "-f", "-", input=changed).stdout
    got = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json").stdout)
    assert got["spec"]["replicas"] == 2
    assert got["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/replicas: 2/replicas: 3/" "$1"\n')
    editor.chmod(0o755)
    edited = kubectl("edit", "deploy", "web", "-n", ns, env={"EDITOR": str(editor), "KUBE_EDITOR": ""})
    assert "edited" in edited.stdout
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout == "3"
    assert kubectl("diff", "-f", "-", input=_deployment(ns, 3, "2"), check=False).returncode == 0


def test_apply_validates_fields_on_the_server(kubectl: Kubectl) -> None:
    ns = _namespace(kubectl)
    bad = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad", "namespace": ns},
                      "datta": {"a": "b"}})
    proc = kubectl("apply", "-f", "-", input=bad, check=False)
    assert proc.returncode == 1
    assert 'strict decoding error: unknown field "datta"' in proc.stderr, proc.stderr


def _hpa_v1(ns: str, extra: dict[str, object] | None = None) -> str:
    return json.dumps({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 70, **(extra or {})},
    })


def test_apply_at_a_version_served_but_not_stored(kubectl: Kubectl) -> None:
    """autoscaling/v1 HPAs (stored as v2): strict field validation, apply, and a diff with no change."""
    ns = _namespace(kubectl)
    bad = kubectl("apply", "-f", "-", input=_hpa_v1(ns, {"targetCPU": 1}), check=False)
    assert bad.returncode == 1 and 'strict decoding error: unknown field "spec.targetCPU"' in bad.stderr, (
        bad.stderr)
    assert "created" in kubectl("apply", "-f", "-", input=_hpa_v1(ns)).stdout
    v2 = json.loads(kubectl("get", "horizontalpodautoscalers.v2.autoscaling", "web", "-n", ns, "-o",
                            "json").stdout)
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    diff = kubectl("diff", "-f", "-", input=_hpa_v1(ns), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
