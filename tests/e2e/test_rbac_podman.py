"""RBAC for a real workload without service networking (pytest.mark.podman): a Podman pod runs kubectl
1.32 with its projected ServiceAccount token against the API server on Podman's bridge gateway (the
cluster runs with network=False, so no ClusterIP: the in-cluster path through the service proxy is
test_auth_podman.py's). A RoleBinding lets the account read pods in its namespace: allowed there,
forbidden in another; the token is refused once the pod is deleted."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL, ClusterThread

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]

SCRIPT = """SA=/var/run/secrets/kubernetes.io/serviceaccount
K="/kubectl --server $API --insecure-skip-tls-verify --token $(cat $SA/token)"
$K get pods -o name
$K get pods -n kube-system -o name 2>&1 || true
$K auth can-i delete pods || true
"""
READER = """
apiVersion: v1
kind: Namespace
metadata: {name: crew}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: crew}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: crew}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: crew}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: reader, namespace: crew}]
"""


def _gateway() -> str:
    out = subprocess.run(
        ["podman", "network", "inspect", "podman"], capture_output=True, text=True, check=True
    )
    return str(json.loads(out.stdout)[0]["subnets"][0]["gateway"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from orchestra.app import ClusterConfig

    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    state = tmp_path_factory.mktemp("rbac-podman")
    runner = ClusterThread(
        ClusterConfig(
            state_dir=state,
            listen_host="0.0.0.0",
            listen_port=0,
            store="memory",
            podman=True,
            network=False,
            stop_pods_on_exit=True,
        )
    )
    try:
        cluster = runner.start()
        if cluster is None:
            pytest.fail(f"the cluster did not start within 60 s (state {state})")
        yield cluster
    finally:
        runner.stop()


def kubectl(
    cluster: Any,
    *args: str,
    input: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.config.state_dir)}
    local = (
        "https://127.0.0.1:" + cluster.url.rsplit(":", 1)[1]
    )  # it listens on 0.0.0.0, its certificate names this
    proc = subprocess.run(
        [KUBECTL, "--server", local, *args], input=input, capture_output=True, text=True, env=env, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_a_pods_service_account_is_authorized_by_rbac(cluster: Any) -> None:
    kubectl(cluster, "apply", "-f", "-", input=READER)
    port = cluster.url.rsplit(":", 1)[1]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader", "namespace": "crew"},
        "spec": {
            "serviceAccountName": "reader",
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "kubectl",
                    "image": "localhost/busybox:latest",
                    "command": ["sh", "-c", SCRIPT],
                    "env": [
                        {"name": "HOME", "value": "/tmp"},
                        {"name": "API", "value": f"https://{_gateway()}:{port}"},
                    ],
                    "volumeMounts": [{"name": "kubectl", "mountPath": "/kubectl", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "kubectl", "hostPath": {"path": KUBECTL, "type": "File"}}],
        },
    }
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(pod))
    deadline = time.monotonic() + 120  # wall-clock: a real container runs
    phase = ""
    while time.monotonic() < deadline and phase not in ("Succeeded", "Failed"):
        time.sleep(0.5)
        phase = json.loads(kubectl(cluster, "get", "pod", "reader", "-n", "crew", "-o", "json").stdout)[
            "status"
        ].get("phase", "")
    logs = kubectl(cluster, "logs", "reader", "-n", "crew").stdout
    assert phase == "Succeeded", logs
    assert logs.splitlines() == [
        "pod/reader",
        'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:crew:reader" '
        'cannot list resource "pods" in API group "" in the namespace "kube-system"',
        "no",
    ]
    uid = json.loads(kubectl(cluster, "get", "pod", "reader", "-n", "crew", "-o", "json").stdout)["metadata"][
        "uid"
    ]
    volumes = Path(cluster.config.state_dir) / "node" / "pods" / uid / "volumes" / "projected"
    token = next(volumes.glob("kube-api-access-*/token")).read_text()
    assert (
        "pod/reader" in kubectl(cluster, "--token", token, "get", "pods", "-n", "crew", "-o", "name").stdout
    )
    kubectl(cluster, "delete", "pod", "reader", "-n", "crew", "--wait=true")
    refused = kubectl(cluster, "--token", token, "get", "pods", "-n", "crew", check=False)
    assert "error: You must be logged in to the server (Unauthorized)" in refused.stderr
