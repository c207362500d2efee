"""Two `orchestra up --store etcd://...` servers over one throwaway etcd, driven with kubectl 1.32: a
Deployment becomes Available through server A, exactly one server holds the controllers' Lease, and
when the leader is killed with SIGKILL during a rollout driven through the other server, that server
takes the Lease within the lease time and the rollout completes; nothing written before the kill is
lost and no pod runs twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from tests.conftest import KUBECTL
from tests.etcdserver import EtcdServer, start_or_skip

pytestmark = pytest.mark.slow

SHARED = ("token", "encryption-config.json", "pki/ca.crt", "pki/ca.key", "pki/sa.key")
LEASE = ["-n", "kube-system", "get", "lease", "orchestra-controllers", "-o", "json"]
FAST_LEASE_SECONDS = 6  # app/leader.py: --timings fast


@attrs.frozen
class Server:
    state: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return (self.state.parent / f"{self.state.name}.log").read_text(errors="replace")

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        proc = subprocess.run([KUBECTL, "--kubeconfig", str(self.state / "kubeconfig"), *args], input=input,
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}\n{self.log_text()[-3000:]}"
        return proc.stdout

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json") if "-o" not in args else self.kubectl(*args))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def orchestra_server(state: Path, etcd: EtcdServer, node_prefix: str, *extra: str) -> Iterator[Server]:
    state.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with (state.parent / f"{state.name}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestra", "up", "--store", etcd.url, "--no-network", "--no-podman",
             "--simulate-nodes", "2", "--simulated-node-prefix", node_prefix, "--timings", "fast",
             "--no-dashboard", "--state-dir", str(state), "--listen", f"127.0.0.1:{port}", *extra],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ORCHESTRA_NO_PODMAN": "1"},
        )
    server = Server(state, port, proc)
    try:
        _wait_ready(server)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"orchestra up exited with {server.proc.returncode}:\n{server.log_text()}")
        if (server.state / "kubeconfig").exists():
            try:
                verify = ssl.create_default_context(cafile=str(server.state / "pki" / "ca.crt"))
                if httpx.get(f"https://{server.address}/readyz", verify=verify, timeout=2).status_code == 200:
                    return
            except (httpx.HTTPError, OSError, ssl.SSLError):
                pass  # not listening yet
        time.sleep(0.1)
    raise AssertionError(f"orchestra up not ready after {timeout}s:\n{server.log_text()}")


def refused(state: Path, etcd: EtcdServer, *extra: str) -> str:
    """`orchestra up` over the cluster's etcd that must refuse to start: its message."""
    state.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "orchestra", "up", "--store", etcd.url, "--no-network", "--no-podman",
         "--no-dashboard", "--state-dir", str(state), "--listen", f"127.0.0.1:{_free_port()}", *extra],
        capture_output=True, text=True, timeout=60, env={**os.environ, "ORCHESTRA_NO_PODMAN": "1"})
    assert proc.returncode != 0, proc.stderr
    assert not (state / "pki" / "ca.crt").exists()  # nothing of its own was made
    return proc.stderr


def holder(server: Server) -> str:
    return str(server.kubectl_json(*LEASE)["spec"].get("holderIdentity") or "")


def deployment(image: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}},
    })


def live_pods(server: Server) -> list[dict[str, Any]]:
    items = server.kubectl_json("get", "pods", "-l", "app=web")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl 1.32 is missing")
def test_the_other_server_takes_over_when_the_leader_is_killed_mid_rollout(tmp_path: Path) -> None:
    etcd = start_or_skip()
    with ExitStack() as stack:
        stack.callback(etcd.remove)
        a = stack.enter_context(orchestra_server(tmp_path / "a", etcd, "sim-a-"))
        # another server of the cluster: a fresh state directory and the cluster's token (k3s' --token);
        # it takes the CA, the keys and the token from the bootstrap record in etcd
        token = (a.state / "token").read_text().strip()
        b = stack.enter_context(orchestra_server(tmp_path / "b", etcd, "sim-b-", "--token", token))
        for name in SHARED:
            assert (b.state / name).read_bytes() == (a.state / name).read_bytes(), name
        # a server without the token, or with another, is refused before it makes anything
        assert "pass its token with --token" in refused(tmp_path / "c", etcd)
        assert "holds another cluster" in refused(tmp_path / "d", etcd, "--token", "not-the-token")

        a.kubectl("apply", "-f", "-", input=deployment("busybox:1"))
        a.kubectl("rollout", "status", "deploy/web", "--timeout=90s", timeout=120)
        available = a.kubectl_json("get", "deploy", "web")["status"]
        assert available["availableReplicas"] == 4, available
        nodes = {p["spec"]["nodeName"] for p in live_pods(a)}
        assert nodes <= {"sim-a-1", "sim-a-2", "sim-b-1", "sim-b-2"}

        leader_id = holder(a)
        assert holder(b) == leader_id  # both servers see one Lease
        owners = [s for s in (a, b) if f"_{s.address}_" in leader_id]
        assert len(owners) == 1, leader_id  # exactly one server leads
        leader, other = owners[0], (b if owners[0] is a else a)

        written = [f"cm-{i}" for i in range(10)]
        for i, name in enumerate(written):  # acknowledged writes through both servers
            (leader if i % 2 else other).kubectl("create", "configmap", name, f"--from-literal=i={i}")

        other.kubectl("set", "image", "deploy/web", "c=busybox:2")
        leader.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.proc.wait(timeout=10)

        new_id = ""
        while time.monotonic() - killed < 30:
            new_id = holder(other)
            if new_id != leader_id:
                break
            time.sleep(0.2)
        took_over = time.monotonic() - killed
        assert f"_{other.address}_" in new_id, (new_id, other.log_text()[-3000:])
        # the lease time (from the last renewal the other saw), plus at most one jittered 1 s retry
        assert took_over <= FAST_LEASE_SECONDS + 4, took_over  # (+ kubectl polling on a busy host)
        lease = other.kubectl_json(*LEASE)["spec"]
        assert lease["leaseTransitions"] >= 1 and lease["leaseDurationSeconds"] == FAST_LEASE_SECONDS

        other.kubectl("rollout", "status", "deploy/web", "--timeout=150s", timeout=180)
        status = other.kubectl_json("get", "deploy", "web")["status"]
        assert status["updatedReplicas"] == status["availableReplicas"] == 4, status

        names = {c["metadata"]["name"] for c in other.kubectl_json("get", "configmaps")["items"]}
        assert set(written) <= names
        assert other.kubectl_json("get", "deploy", "web")["spec"]["template"]["spec"]["containers"][0][
            "image"] == "busybox:2"
        pods = live_pods(other)
        pod_names = [p["metadata"]["name"] for p in pods]
        assert len(pod_names) == len(set(pod_names)) == 4, pod_names  # no pod name twice
        assert all(p["spec"]["containers"][0]["image"] == "busybox:2" for p in pods)
        assert all(p["status"].get("phase") == "Running" for p in pods)
        status = subprocess.run([sys.executable, "-m", "orchestra", "status", "--kubeconfig",
                                 str(other.state / "kubeconfig")], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        rows = {line.split()[0]: line.split()[2] for line in status.stdout.splitlines()[1:]
                if "_127.0.0.1:" in line and not line.startswith("leader:")}
        assert rows[new_id] == "leader", status.stdout
        assert rows[leader_id] in ("standby", "unreachable"), status.stdout  # not renewed since the kill
        assert f"leader: {new_id}" in status.stdout and "store: healthy" in status.stdout
        # every live pod runs on the surviving server's nodes: the dead server's were replaced
        survivor = "sim-a-" if other is a else "sim-b-"
        assert {p["spec"]["nodeName"] for p in pods} <= {f"{survivor}1", f"{survivor}2"}
