"""gRPC probes, native sidecars and scheduling gates end to end: kubectl 1.32 against a real orchestra
cluster whose pods are real Podman pods (the harness of test_kubectl_pods.py, one cluster per module).

The gRPC server runs in an image built offline by tests/e2e/grpcimage.py (this machine's Python and grpcio,
`podman import`); it turns NOT_SERVING while /tmp/not-serving exists.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import KUBECTL
from tests.e2e.grpcimage import FLAG, PORT, ensure_grpc_image
from tests.e2e.test_kubectl_pods import (
    PodmanCluster,
    _brief,
    cluster_on,
    delete_quietly,
    phase,
    pod,
    ready,
    shell,
)

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]
Obj = dict[str, Any]
SIDECAR_HTTPD = (
    "mkdir -p /www && echo sidecar > /www/index.html && trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"
)
FETCH = "until wget -q -O - http://127.0.0.1:8080/; do sleep 0.2; done"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanCluster]:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"kubectl 1.32 is required for these tests ({KUBECTL})")
    with cluster_on(tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("home"), "memory") as c:
        yield c


@pytest.fixture(scope="module")
def grpc_image() -> str:
    return ensure_grpc_image()


def row(cluster: PodmanCluster, name: str) -> list[str]:
    """NAME READY STATUS RESTARTS of `kubectl get pod NAME`."""
    return cluster.kubectl("get", "pod", name, "--no-headers").stdout.split()[:4]


def init_status(p: Obj | None, name: str) -> Obj:
    for cs in ((p or {}).get("status") or {}).get("initContainerStatuses") or []:
        if cs.get("name") == name:
            return dict(cs)
    return {}


def sidecar(**extra: Any) -> Obj:
    return {**shell("sc", SIDECAR_HTTPD), "restartPolicy": "Always", **extra}


def test_grpc_readiness_probe_follows_the_health_server(cluster: PodmanCluster, grpc_image: str) -> None:
    probe = {"grpc": {"port": PORT}, "periodSeconds": 1, "failureThreshold": 1}
    startup = {"grpc": {"port": PORT, "service": "demo"}, "periodSeconds": 1, "failureThreshold": 30}
    server = {
        "name": "server",
        "image": grpc_image,
        "imagePullPolicy": "IfNotPresent",
        "readinessProbe": probe,
        "startupProbe": startup,
    }
    cluster.apply(pod("grpc", [server], terminationGracePeriodSeconds=2))
    try:
        p = cluster.wait_pod("grpc", ready, limit=60)
        assert p is not None and p["spec"]["containers"][0]["readinessProbe"]["grpc"]["service"] == ""
        assert row(cluster, "grpc")[1:3] == ["1/1", "Running"]
        cluster.kubectl("exec", "grpc", "--", "touch", FLAG)
        p = cluster.wait_pod("grpc", lambda p: not ready(p), limit=15)
        assert phase(p) == "Running" and row(cluster, "grpc")[1:3] == ["0/1", "Running"]
        unhealthy = [e["message"] for e in cluster.events("grpc") if e["reason"] == "Unhealthy"]
        assert 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")' in unhealthy, (
            unhealthy
        )
        cluster.kubectl("exec", "grpc", "--", "rm", FLAG)
        p = cluster.wait_pod("grpc", ready, limit=15)
        assert int(p["status"]["containerStatuses"][0]["restartCount"]) == 0  # type: ignore[index]
    finally:
        delete_quietly(cluster, "grpc")


def test_grpc_probe_of_a_closed_port_times_out_like_kubelet(cluster: PodmanCluster, grpc_image: str) -> None:
    probe = {"grpc": {"port": PORT + 1}, "periodSeconds": 2}
    server = {
        "name": "server",
        "image": grpc_image,
        "imagePullPolicy": "IfNotPresent",
        "readinessProbe": probe,
    }
    cluster.apply(pod("grpc-closed", [server], terminationGracePeriodSeconds=2))
    try:
        p = cluster.wait_pod("grpc-closed", lambda p: phase(p) == "Running", limit=60)
        ip = p["status"]["podIP"]  # type: ignore[index]
        want = (
            f'Readiness probe failed: timeout: failed to connect service "{ip}:{PORT + 1}" within 1s: '
            "context deadline exceeded"
        )
        deadline = time.monotonic() + 20
        while want not in [e["message"] for e in cluster.events("grpc-closed")]:
            assert time.monotonic() < deadline, cluster.events("grpc-closed")
            time.sleep(0.5)
        assert not ready(cluster.pod("grpc-closed"))
    finally:
        delete_quietly(cluster, "grpc-closed")


def test_sidecar_serves_the_main_container_over_localhost(cluster: PodmanCluster) -> None:
    startup = {"exec": {"command": ["test", "-f", "/tmp/up"]}, "periodSeconds": 1, "failureThreshold": 60}
    readiness = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    setup = shell("setup", "wget -q -O - http://127.0.0.1:8080/")  # needs the sidecar already serving
    main = shell("main", f"{FETCH}; trap 'exit 0' TERM; sleep 3600 & wait")
    cluster.apply(
        pod(
            "side",
            [main],
            initContainers=[sidecar(startupProbe=startup, readinessProbe=readiness), setup],
            terminationGracePeriodSeconds=5,
        )
    )
    try:
        p = cluster.wait_pod(
            "side", lambda p: "running" in (init_status(p, "sc").get("state") or {}), limit=60
        )
        time.sleep(2)
        assert row(cluster, "side")[1:3] == ["0/2", "Init:0/2"], _brief(cluster.pod("side"))
        cluster.kubectl("exec", "side", "-c", "sc", "--", "touch", "/tmp/up")
        p = cluster.wait_pod("side", ready, limit=30)
        assert row(cluster, "side")[1:4] == ["2/2", "Running", "0"]
        sc = init_status(p, "sc")
        assert sc["started"] is True and sc["ready"] is True and "running" in sc["state"]
        assert init_status(p, "setup")["state"]["terminated"]["reason"] == "Completed"
        assert cluster.kubectl("logs", "side", "-c", "setup").stdout == "sidecar\n"
        assert cluster.kubectl("logs", "side", "-c", "main").stdout == "sidecar\n"
        cluster.kubectl("exec", "side", "-c", "sc", "--", "kill", "1", check=False)  # the sidecar exits
        cluster.wait_pod(
            "side",
            lambda p: (
                init_status(p, "sc").get("restartCount") == 1 and "running" in init_status(p, "sc")["state"]
            ),
            limit=30,
        )
        # the new instance waits for its startup probe again; the pod stays initialized, and kube's printPod
        # keeps the reason its init-container loop found (the running app container sets none)
        assert row(cluster, "side")[1:4] == ["1/2", "Init:0/2", "1"]
        assert phase(cluster.pod("side")) == "Running"
        cluster.kubectl("exec", "side", "-c", "sc", "--", "touch", "/tmp/up")
        cluster.wait_pod("side", ready, limit=30)
        assert row(cluster, "side")[1:4] == ["2/2", "Running", "1"]
    finally:
        delete_quietly(cluster, "side")


def test_job_with_a_sidecar_completes(cluster: PodmanCluster) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "withside"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "initContainers": [sidecar()],
                    "containers": [shell("main", f"{FETCH} && sleep 1")],
                }
            },
        },
    }
    cluster.apply(job)
    try:
        cluster.kubectl("wait", "--for=condition=complete", "job/withside", "--timeout=60s", timeout=70)
        [p] = cluster.pods("job-name=withside")
        name = p["metadata"]["name"]
        assert phase(p) == "Succeeded", _brief(p)
        assert init_status(p, "sc")["state"]["terminated"]["exitCode"] == 0  # its TERM trap: stopped politely
        assert row(cluster, name)[1:3] == ["0/2", "Completed"]
        uid = p["metadata"]["uid"]
        left = cluster.podman("ps", "-q", "--filter", f"label=orchestra.io/pod-uid={uid}").stdout.split()
        assert left == [], "the sidecar (or the sandbox) still runs"
    finally:
        cluster.kubectl("delete", "job", "withside", "--ignore-not-found", "--wait=false", check=False)


def test_gated_pod_waits_until_its_gates_are_removed(cluster: PodmanCluster) -> None:
    main = shell("main", "trap 'exit 0' TERM; sleep 3600 & wait")
    cluster.apply(
        pod("gated", [main], schedulingGates=[{"name": "example.com/quota"}], terminationGracePeriodSeconds=2)
    )
    try:
        time.sleep(2)
        p = cluster.pod("gated")
        assert p is not None and not p["spec"].get("nodeName") and phase(p) == "Pending"
        assert row(cluster, "gated")[1:3] == ["0/1", "SchedulingGated"]
        added = cluster.kubectl(
            "patch",
            "pod",
            "gated",
            "--type=json",
            "-p",
            '[{"op":"add","path":"/spec/schedulingGates/-","value":{"name":"more"}}]',
            check=False,
        )
        assert added.returncode == 1
        assert (
            "spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling "
            "gate 'more'"
        ) in added.stderr
        cluster.kubectl(
            "patch", "pod", "gated", "--type=json", "-p", '[{"op":"remove","path":"/spec/schedulingGates"}]'
        )
        cluster.wait_pod("gated", ready, limit=30)
        assert row(cluster, "gated")[1:3] == ["1/1", "Running"]
    finally:
        delete_quietly(cluster, "gated")
