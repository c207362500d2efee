"""A workload that talks to the API (pytest.mark.podman): a real Podman pod runs kubectl 1.32 with its
in-cluster configuration — KUBERNETES_SERVICE_HOST/PORT through the service proxy, the projected
token and ca.crt — as its ServiceAccount, which a RoleBinding lets read pods in its own namespace
only (RBAC: another namespace is forbidden), and its token stops working once the pod is deleted.

The cluster runs service networking on a range of its own (10.231.0.0/24, DNS on 10.231.0.10), so it
never competes for 10.96.0.10:53 or the default ClusterIPs with another network-enabled orchestra on
this machine. Needs root (it routes that range to lo, and removes the route at exit).
"""

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

SERVICE_CIDR = "10.231.0.0/24"
API_IP = "10.231.0.1"
SCRIPT = """set -e
ls /var/run/secrets/kubernetes.io/serviceaccount
echo "api=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
/kubectl get pods -o name
/kubectl get pods -n kube-system -o name 2>&1 || true
/kubectl auth whoami -o jsonpath='{.status.userInfo.username}{"\\n"}'
SA=/var/run/secrets/kubernetes.io/serviceaccount
/kubectl --server https://kubernetes.default.svc.cluster.local --token "$(cat $SA/token)" \\
  --certificate-authority $SA/ca.crt get serviceaccount default -o name
"""
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "incluster"},
    "spec": {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "kubectl",
                "image": "localhost/busybox:latest",
                "command": ["sh", "-c", SCRIPT],
                "env": [{"name": "HOME", "value": "/tmp"}],
                "volumeMounts": [{"name": "kubectl", "mountPath": "/kubectl", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "kubectl", "hostPath": {"path": KUBECTL, "type": "File"}}],
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from orchestra.app import ClusterConfig

    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    if os.geteuid() != 0:
        pytest.fail("this test routes its service range to lo: it needs root")
    state = tmp_path_factory.mktemp("auth-podman")
    runner = ClusterThread(
        ClusterConfig(
            state_dir=state,
            listen_port=0,
            store="memory",
            podman=True,
            network=True,
            service_cidr=SERVICE_CIDR,
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


def kubectl(cluster: Any, *args: str, input: str | None = None, check: bool = True,
            home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(home or cluster.config.state_dir)}
    proc = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_phase(cluster: Any, name: str, phases: tuple[str, ...], limit: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit  # wall-clock: a real container runs
    while time.monotonic() < deadline:
        got = kubectl(cluster, "get", "pod", name, "-o", "json", check=False)
        if got.returncode == 0 and json.loads(got.stdout)["status"].get("phase") in phases:
            return json.loads(got.stdout)  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(
        f"pod {name} did not reach {phases}: {kubectl(cluster, 'describe', 'pod', name).stdout}"
    )


READER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: incluster-reader, namespace: default}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [serviceaccounts], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: incluster-reader, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: incluster-reader}
subjects: [{kind: ServiceAccount, name: default, namespace: default}]
"""


def test_a_pod_uses_the_api_with_its_in_cluster_config(cluster: Any) -> None:
    assert cluster.core.allocator.kubernetes_ip == API_IP
    kubectl(cluster, "apply", "-f", "-", input=READER)
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(POD))
    pod = wait_phase(cluster, "incluster", ("Succeeded", "Failed"))
    logs = kubectl(cluster, "logs", "incluster").stdout
    assert pod["status"]["phase"] == "Succeeded", logs
    assert logs.splitlines() == [
        "ca.crt", "namespace", "token", f"api={API_IP}:443", "pod/incluster",
        'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:default:default" '
        'cannot list resource "pods" in API group "" in the namespace "kube-system"',
        "system:serviceaccount:default:default", "serviceaccount/default"]

    volume = next(v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    token_file = (
        Path(cluster.config.state_dir)
        / "node"
        / "pods"
        / pod["metadata"]["uid"]
        / "volumes"
        / "projected"
        / volume
        / "token"
    )
    token = token_file.read_text()
    who = json.loads(kubectl(cluster, "--token", token, "auth", "whoami", "-o", "json").stdout)["status"][
        "userInfo"
    ]
    assert who["extra"]["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]

    kubectl(cluster, "delete", "pod", "incluster", "--wait=true")
    refused = kubectl(cluster, "--token", token, "get", "pods", check=False)
    assert refused.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in refused.stderr
