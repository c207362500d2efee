"""Persistent storage end to end: a real orchestra cluster with Podman pods (the module-scoped cluster
of test_kubectl_pods: podman=True, network=False) and kubectl 1.32. A pod writes into a claim of the
default `local-path` class (WaitForFirstConsumer), is deleted, and a new pod with the same claim reads
the file back; a claim a running pod uses stays Terminating until the pod is gone, and deleting the
claim removes the provisioned volume and its directory."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.test_kubectl_pods import (  # noqa: F401  (the module-scoped cluster fixture)
    PodmanCluster,
    cluster,
    delete_quietly,
    phase,
    pod,
    shell,
)

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]


def claim_pod(name: str, script: str) -> dict[str, object]:
    container = {**shell("c", script), "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    return pod(name, [container], restartPolicy="Never", terminationGracePeriodSeconds=1,
               volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "notes"}}])


def wait_until(pred, limit: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit  # wall-clock: a real cluster with real Podman pods
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"  # wall-clock: as above
        time.sleep(0.2)  # wall-clock: polling the API


def test_data_survives_the_pod_and_goes_with_the_claim(cluster: PodmanCluster) -> None:  # noqa: F811
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "notes"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}}
    try:
        cluster.apply(claim)
        out = cluster.kubectl("get", "pvc", "notes", "-o", "json").stdout
        assert json.loads(out)["spec"]["storageClassName"] == "local-path"  # DefaultStorageClass admission
        cluster.apply(claim_pod("writer", "echo hello from writer > /data/note && cat /data/note"))
        cluster.wait_pod("writer", lambda p: phase(p) == "Succeeded", limit=90)
        bound = json.loads(cluster.kubectl("get", "pvc", "notes", "-o", "json").stdout)
        assert bound["status"]["phase"] == "Bound"
        volume = bound["spec"]["volumeName"]
        directory = cluster.state / "volumes" / volume
        assert (directory / "note").read_text() == "hello from writer\n"
        cluster.kubectl("delete", "pod", "writer", "--wait=true")
        cluster.apply(claim_pod("reader", "cat /data/note"))
        cluster.wait_pod("reader", lambda p: phase(p) == "Succeeded", limit=90)
        assert cluster.kubectl("logs", "reader").stdout == "hello from writer\n"
        table = cluster.kubectl("get", "pvc,pv,sc").stdout
        lines = table.splitlines()
        assert any(line.split()[:5] == ["persistentvolumeclaim/notes", "Bound", volume, "64Mi", "RWO"]
                   for line in lines), table
        assert any(line.split()[:7] == [f"persistentvolume/{volume}", "64Mi", "RWO", "Delete", "Bound",
                                        "default/notes", "local-path"] for line in lines), table
        assert any(line.split()[:6] == ["storageclass.storage.k8s.io/local-path", "(default)",
                                        "orchestra.io/local-path", "Delete", "WaitForFirstConsumer", "false"]
                   for line in lines), table
        cluster.kubectl("delete", "pod", "reader", "--wait=true")
        # pvc-protection: a claim a running pod uses is only Terminating until the pod is gone
        cluster.apply(claim_pod("holder", "exec sleep 3600"))
        cluster.wait_pod("holder", lambda p: phase(p) == "Running", limit=90)
        cluster.kubectl("delete", "pvc", "notes", "--wait=false")
        time.sleep(1)  # wall-clock: time for the protection controller to (wrongly) let go
        row = cluster.kubectl("get", "pvc", "notes", "--no-headers").stdout.split()
        assert row[:3] == ["notes", "Terminating", volume], row
        assert (directory / "note").exists()
        cluster.kubectl("delete", "pod", "holder", "--wait=true")
        wait_until(lambda: cluster.kubectl("get", "pv", volume, check=False).returncode != 0)
        assert not directory.exists()
    finally:
        delete_quietly(cluster, "writer", "reader", "holder")
        cluster.kubectl("delete", "pvc", "notes", "--ignore-not-found", "--wait=false", check=False)


def test_stateful_storage_example_keeps_its_counter(cluster: PodmanCluster) -> None:  # noqa: F811
    from tests.e2e.test_examples import EXAMPLES

    example = EXAMPLES / "stateful-storage" / "statefulset.yaml"

    def count() -> str:
        return cluster.kubectl("exec", "counter-0", "--", "cat", "/data/count", check=False).stdout.strip()

    def is_ready(p: dict[str, object] | None) -> bool:
        status = (p or {}).get("status") or {}
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in status.get("conditions") or [])  # type: ignore[union-attr]

    try:
        cluster.kubectl("apply", "-f", str(example))
        cluster.wait_pod("counter-1", is_ready, limit=120)
        assert count() == "1"
        uid = (cluster.pod("counter-0") or {})["metadata"]["uid"]  # type: ignore[index]
        cluster.kubectl("delete", "pod", "counter-0", "--wait=true")
        cluster.wait_pod("counter-0", lambda p: is_ready(p) and p["metadata"]["uid"] != uid, limit=120)  # type: ignore[index]
        assert count() == "2"  # the same claim, so the same data
        claims = json.loads(cluster.kubectl("get", "pvc", "-l", "app=counter", "-o", "json").stdout)["items"]
        assert sorted(c["metadata"]["name"] for c in claims) == ["data-counter-0", "data-counter-1"]
    finally:
        cluster.kubectl("delete", "-f", str(example), "--ignore-not-found", "--wait=true", check=False)
        cluster.kubectl(
            "delete", "pvc", "-l", "app=counter", "--ignore-not-found", "--wait=true", check=False
        )
