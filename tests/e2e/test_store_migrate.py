"""`orchestra store migrate` as a user runs it: a real `orchestra up --no-network` on the durable log
runs a 2-replica Deployment in real Podman pods; it is stopped (its pods keep running), the cluster
is migrated into a throwaway etcd, and `orchestra up --store etcd://...` serves it: kubectl 1.32 sees
the Deployment Available with the same pod uids and Podman runs no extra container. Then back into
the durable log (--overwrite: the old log is still there), and the same again. A migration while the
server runs is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time  # wall-clock: waiting on other processes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL
from tests.e2e.upserver import UpServer, orchestra_up
from tests.etcdserver import EtcdServer, start_or_skip

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                              "name": "c", "image": "localhost/busybox:latest",
                              "imagePullPolicy": "IfNotPresent",
                              "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]}}},
}


@pytest.fixture
def etcd() -> Iterator[EtcdServer]:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"kubectl 1.32 is required for this test ({KUBECTL})")
    server = start_or_skip()
    yield server
    server.remove()


def kubectl(server: UpServer, *args: str) -> Any:
    proc = subprocess.run([KUBECTL, "--kubeconfig", str(server.kubeconfig), *args, "-o", "json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}\n{server.log_text()[-3000:]}"
    return json.loads(proc.stdout)


def labelled(state: Path, *what: str) -> list[str]:
    """The ids Podman lists (`podman ps -a` or `podman pod ps`) of the cluster on `state`."""
    out = subprocess.run(["podman", *what, "-q", "--no-trunc", "--filter",
                          f"label=orchestra.io/state-dir={state.resolve()}"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(out.split())


def containers(state: Path) -> list[str]:
    """Every container of the cluster's pods (their infra containers included)."""
    return labelled(state, "ps", "-a")


def available(server: UpServer, timeout: float = 60) -> list[str]:
    """Once the Deployment is Available with its 2 pods Running: their uids."""
    deadline = time.monotonic() + timeout
    while True:
        deploy = kubectl(server, "get", "deployment", "web")
        conditions = {c["type"]: c["status"] for c in deploy.get("status", {}).get("conditions", [])}
        pods = [p for p in kubectl(server, "get", "pods", "-l", "app=web")["items"]
                if not p["metadata"].get("deletionTimestamp")]
        if conditions.get("Available") == "True" and deploy["status"].get("readyReplicas") == 2 \
                and len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods):
            return sorted(p["metadata"]["uid"] for p in pods)
        assert time.monotonic() < deadline, f"not Available in {timeout} s: {deploy.get('status')}"
        time.sleep(0.3)


def migrate(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestra", "store", "migrate", "--state-dir", str(state),
                           *args], capture_output=True, text=True, timeout=120)


def test_a_podman_cluster_moves_to_etcd_and_back_without_running_a_pod_twice(
        tmp_path: Path, etcd: EtcdServer) -> None:
    state = tmp_path / "state"
    try:
        with orchestra_up(state, podman=True, store=()) as server:  # the durable log
            proc = subprocess.run([KUBECTL, "--kubeconfig", str(server.kubeconfig), "apply", "-f", "-"],
                                  input=json.dumps(DEPLOYMENT), capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            uids = available(server)
            ctrs = containers(state)
            refused = migrate(state, "--to", etcd.url)
            assert refused.returncode == 1 and "orchestra is running on" in refused.stderr, refused.stderr
        assert containers(state) == ctrs  # stopped, the pods keep running

        done = migrate(state, "--to", etcd.url)
        assert done.returncode == 0, done.stderr
        assert "migrated " in done.stdout and f"orchestra up --store {etcd.url}" in done.stdout
        with orchestra_up(state, podman=True, store=("--store", etcd.url)) as server:
            assert available(server) == uids  # adopted: the same pods
            time.sleep(2)  # wall-clock: room for a wrongly started second copy to show up
            assert available(server) == uids and containers(state) == ctrs

        back = migrate(state, "--to", "durable", "--from", etcd.url)
        assert back.returncode == 1 and "--overwrite" in back.stderr  # the old log is still there
        back = migrate(state, "--to", "durable", "--from", etcd.url, "--overwrite")
        assert back.returncode == 0, back.stderr
        with orchestra_up(state, "--stop-pods", podman=True, store=()) as server:
            assert available(server) == uids
            time.sleep(2)  # wall-clock: as above
            assert available(server) == uids and containers(state) == ctrs
    finally:
        pods = labelled(state, "pod", "ps")
        if pods:
            subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", *pods], capture_output=True, check=False)
