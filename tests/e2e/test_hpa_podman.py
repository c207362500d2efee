"""A HorizontalPodAutoscaler on real Podman pods, with kubectl 1.32: a busybox Deployment whose pods
burn CPU while a file on the host exists scales up under `kubectl autoscale`, and back down once the
file is gone and the (shortened) downscale stabilization window has passed. The cluster runs with
`--timings fast` (HPAs synced every 5 s); each pod may use at most 200m (its CPU limit), so the
test costs at most 0.6 of a core for about half a minute."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL
from tests.e2e.test_kubectl_pods import IMAGE, PodmanCluster, cluster_on

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]

BURN = "while :; do if [ -f /load/on ]; then :; else sleep 1; fi; done"
HEADER = ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanCluster]:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"kubectl 1.32 is required for these tests ({KUBECTL})")
    with cluster_on(
        tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("home"), "memory", timings="fast"
    ) as c:
        yield c


def burner(load: Path) -> dict[str, Any]:
    container = {
        "name": "burn",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", BURN],
        "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}},
        "volumeMounts": [{"name": "load", "mountPath": "/load"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "burn"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "burn"}},
            "template": {
                "metadata": {"labels": {"app": "burn"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [container],
                    "volumes": [{"name": "load", "hostPath": {"path": str(load)}}],
                },
            },
        },
    }


def hpa_row(cluster: PodmanCluster) -> list[str]:
    lines = cluster.kubectl("get", "hpa", "burn").stdout.splitlines()
    assert lines[0].split() == HEADER
    return [cell for cell in (c.strip() for c in lines[1].split("   ")) if cell]


def eventually(check: Callable[[], Any], what: str, limit: float = 120.0) -> Any:
    deadline = time.monotonic() + limit
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(1)
    return result


def utilization(row: list[str]) -> int:
    current = row[2].removeprefix("cpu: ").split("/")[0]
    return int(current.removesuffix("%")) if current.endswith("%") else -1


def test_a_cpu_burning_deployment_scales_up_then_down(cluster: PodmanCluster, tmp_path: Path) -> None:
    load = tmp_path / "load"
    load.mkdir()
    (load / "on").write_text("burn\n")
    try:
        cluster.apply(burner(load))
        eventually(
            lambda: [p for p in cluster.pods("app=burn") if p.get("status", {}).get("phase") == "Running"],
            "the first pod runs",
            limit=90,
        )
        out = cluster.kubectl(
            "autoscale", "deployment", "burn", "--cpu-percent=50", "--min=1", "--max=3"
        ).stdout
        assert out.strip() == "horizontalpodautoscaler.autoscaling/burn autoscaled"
        behavior = {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 10}}}}
        cluster.kubectl("patch", "hpa", "burn", "--type=merge", "-p", json.dumps(behavior))
        assert hpa_row(cluster)[:5] == ["burn", "Deployment/burn", "cpu: <unknown>/50%", "1", "3"]

        up = eventually(lambda: (row := hpa_row(cluster))[5] == "3" and row, "scaled up to 3")
        assert utilization(up) > 55, up  # up to 200m of a 100m request each (less on a busy machine)
        (load / "on").unlink()  # the load stops
        down = eventually(lambda: (row := hpa_row(cluster))[5] == "1" and row, "scaled back down to 1")
        assert 0 <= utilization(down) < 50, down
        messages = [
            e["message"]
            for e in cluster.events("burn")
            if e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"
        ]
        assert (
            "New size: 3; reason: cpu resource utilization (percentage of request) above target" in messages
        )
        assert "New size: 1; reason: All metrics below target" in messages
    finally:
        cluster.kubectl("delete", "hpa,deployment", "burn", "--ignore-not-found", check=False)
        (load / "on").unlink(missing_ok=True)
