"""kubectl 1.32 and HorizontalPodAutoscalers on a live cluster of simulated nodes (`--timings fast`:
HPAs sync every 5 s): `kubectl autoscale` (an autoscaling/v1 POST), `get hpa` columns, `describe`,
`apply` of v2 and v1 manifests, kube's validation errors — and the controller scaling a Deployment
whose pods' CPU use is scripted with the orchestra.io/simulated-cpu annotation."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClusterThread, LiveCluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
HEADER = ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    from orchestra.app import ClusterConfig

    state = tmp_path_factory.mktemp("hpa-state")
    home = tmp_path_factory.mktemp("hpa-home")
    runner = ClusterThread(
        ClusterConfig(
            state_dir=state,
            listen_port=0,
            store="memory",
            podman=False,
            network=False,
            simulate_nodes=1,
            timings="fast",
        )
    )
    c: Any = runner.start()
    yield LiveCluster(c.url, c.token, c.kubeconfig, state, home, c.ca_cert)
    runner.stop()


@pytest.fixture(scope="module")
def kubectl(cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [kubectl_bin, *args],
            capture_output=True,
            text=True,
            env=cluster.kubectl_env(),
            timeout=60,
            input=stdin,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def _eventually(check: Callable[[], Any], what: str, limit: float = 60.0) -> Any:
    deadline = time.monotonic() + limit  # wall-clock: a live cluster
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, what  # wall-clock: as above
        time.sleep(0.5)  # wall-clock: polling


def _row(kubectl: Kubectl, name: str) -> list[str]:
    lines = kubectl("get", "hpa", name).stdout.splitlines()
    assert lines[0].split() == HEADER
    return lines[1].split("   ")  # columns are separated by at least three spaces


def _cells(kubectl: Kubectl, name: str) -> list[str]:
    return [c.strip() for c in _row(kubectl, name) if c.strip()]


def test_autoscale_get_and_describe(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "web", "--image=busybox", "--", "sleep", "3600")
    kubectl("set", "resources", "deployment", "web", "--requests=cpu=100m")
    kubectl(
        "patch",
        "deployment",
        "web",
        "-p",
        json.dumps(
            {"spec": {"template": {"metadata": {"annotations": {"orchestra.io/simulated-cpu": "150m"}}}}}
        ),
    )
    out = kubectl("autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=5").stdout
    assert out.strip() == "horizontalpodautoscaler.autoscaling/web autoscaled"
    assert _cells(kubectl, "web")[:6] == ["web", "Deployment/web", "cpu: <unknown>/50%", "1", "5", "0"]
    # 150 % of the request against a 50 % target: 3 pods, then 9 -> capped at 5
    cells = _eventually(lambda: (c := _cells(kubectl, "web"))[5] == "5" and c, "scaled to 5", limit=90)
    assert cells[:5] == ["web", "Deployment/web", "cpu: 150%/50%", "1", "5"]
    raw = json.loads(
        kubectl("get", "--raw", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web").stdout
    )
    assert raw["spec"]["targetCPUUtilizationPercentage"] == 50
    assert raw["status"]["currentCPUUtilizationPercentage"] == 150 and raw["status"]["currentReplicas"] == 5
    described = kubectl("describe", "hpa", "web").stdout
    assert "resource cpu on pods  (as a percentage of request):  150% (150m) / 50%" in described
    assert "New size: 3; reason: cpu resource utilization (percentage of request) above target" in described
    assert "ScalingLimited  True    TooManyReplicas" in described
    listed = (
        kubectl("get", "all", "-l", "nothing=here").stdout + kubectl("api-resources", "--no-headers").stdout
    )
    assert "horizontalpodautoscalers" in listed and " hpa " in listed


V2_MANIFEST = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: api
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 64Mi}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 20}
"""


def test_apply_v2_then_read_and_write_at_v1(kubectl: Kubectl, tmp_path: Path) -> None:
    (tmp_path / "hpa.yaml").write_text(V2_MANIFEST)
    assert "created" in kubectl("apply", "-f", str(tmp_path / "hpa.yaml")).stdout
    assert _cells(kubectl, "api")[:6] == ["api", "Deployment/api", "memory: <unknown>/64Mi", "2", "4", "0"]
    v1 = json.loads(
        kubectl("get", "--raw", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/api").stdout
    )
    assert "targetCPUUtilizationPercentage" not in v1["spec"]
    notes = v1["metadata"]["annotations"]
    assert json.loads(notes["autoscaling.alpha.kubernetes.io/metrics"]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "64Mi"}}
    ]
    assert (
        json.loads(notes["autoscaling.alpha.kubernetes.io/behavior"])["ScaleDown"][
            "StabilizationWindowSeconds"
        ]
        == 20
    )
    v1["spec"]["maxReplicas"] = 6  # a v1 client writes back what it read
    kubectl("replace", "-f", "-", stdin=json.dumps(v1))
    stored = json.loads(kubectl("get", "hpa", "api", "-o", "json").stdout)
    assert stored["apiVersion"] == "autoscaling/v2" and stored["spec"]["maxReplicas"] == 6
    assert stored["spec"]["metrics"][0]["resource"]["name"] == "memory"
    assert stored["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 20
    assert not [k for k in stored["metadata"].get("annotations", {}) if k.startswith("autoscaling.alpha")]


def test_invalid_hpas_get_kube_s_errors(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = V2_MANIFEST.replace("minReplicas: 2", "minReplicas: 0").replace("name: api\n", "name: bad\n", 1)
    (tmp_path / "bad.yaml").write_text(bad)
    out = kubectl("apply", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert out.returncode == 1
    assert (
        'The HorizontalPodAutoscaler "bad" is invalid: \n* spec.minReplicas: Invalid value: 0: '
        "must be greater than or equal to 1\n* spec.metrics: Forbidden: must specify at least one Object "
        "or External metric to support scaling to zero replicas"
    ) in out.stderr
    out = kubectl("autoscale", "deployment", "web", "--max=0", "--name=zero", check=False)
    assert out.returncode == 1 and "--max=MAXPODS is required and must be at least 1" in out.stderr
