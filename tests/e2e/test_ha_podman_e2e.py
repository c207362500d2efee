"""The HA control plane with real pods: a 3-member etcd, servers A and B over it (`--no-podman`: no node
of their own) and one node joined through A (`orchestra join --no-network`, its own Podman) running a
Deployment of 3 real busybox pods. The node learns B from the `kubernetes` Endpoints; one etcd member
is killed while ConfigMaps are written through A (writes keep succeeding on 2 of 3); a rollout is
started through B and A is killed with SIGKILL in the middle: B takes the controllers' Lease within the
lease time, the rollout completes through B, every ConfigMap A acknowledged is there, the node stays
Ready, now talking to B, and runs each pod once (Podman's pods against the API's, by uid); restarted
with A's URL, the join reaches B from the servers it kept in its state dir and adopts its pods.
B joins with `--token` and a fresh state directory (the bootstrap record in etcd); servers without the
token or with another are refused before they make anything; `orchestra status` names the new leader."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KUBECTL
from tests.e2e.joinnodes import NodeDirs, Server, free_port, join, podman, stop, wait
from tests.e2e.test_join_node_e2e import _cluster_cidr
from tests.etcdserver import EtcdCluster, cluster_or_skip

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]
LEASE = ("-n", "kube-system", "get", "lease", "orchestra-controllers", "-o", "json")
FAST_LEASE_SECONDS = 6  # app/leader.py, --timings fast
POD_UID = "orchestra.io/pod-uid"  # runtime/base.py: the label on a pod's Podman pod


def deployment(node: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "nodeSelector": {"kubernetes.io/hostname": node}, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "localhost/busybox:latest",
                                     "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}}},
    }


@contextmanager
def orchestra_server(state: Path, etcd: EtcdCluster, cidr: str,
                     *extra: str) -> Iterator[tuple[Server, subprocess.Popen[bytes]]]:
    """`orchestra up` over the etcd cluster without nodes of its own (--no-podman), until /readyz."""
    state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with (state / "up.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestra", "up", "--store", etcd.url, "--no-network", "--no-podman",
             "--no-dashboard", "--timings", "fast", "--cluster-cidr", cidr, "--state-dir", str(state),
             "--listen", f"127.0.0.1:{port}", *extra], stdout=log, stderr=subprocess.STDOUT)
    server = Server(state, port)
    try:
        wait(f"orchestra up {state.name}", lambda: proc.poll() is None and (state / "kubeconfig").exists()
             and server.kubectl("get", "--raw", "/readyz", check=False).strip() == "ok", timeout=60)
        yield server, proc
    finally:
        stop(proc)


def refused(state: Path, etcd: EtcdCluster, *extra: str) -> str:
    """`orchestra up` over the cluster's etcd that must refuse to start: its message."""
    state.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "orchestra", "up", "--store", etcd.url, "--no-network", "--no-podman",
         "--no-dashboard", "--state-dir", str(state), "--listen", f"127.0.0.1:{free_port()}", *extra],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, proc.stderr
    assert not (state / "pki" / "ca.crt").exists()  # nothing of its own was made
    return proc.stderr


class Writer(threading.Thread):
    """Creates ConfigMaps through one server as fast as it answers, until told to stop or the server
    is gone; remembers the ones it acknowledged (201) and when."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server, self.acknowledged, self.refused = server, [], 0
        self.acked_at: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        token = (self.server.state / "token").read_text().strip()
        verify = ssl.create_default_context(cafile=str(self.server.state / "pki" / "ca.crt"))
        with httpx.Client(base_url=self.server.url, verify=verify, timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            for i in range(100_000):
                if self.stopping.is_set():
                    return
                name = f"w-{i}"
                try:
                    resp = http.post("/api/v1/namespaces/default/configmaps",
                                     json={"metadata": {"name": name}, "data": {"i": str(i)}})
                except httpx.HTTPError:
                    return  # the server is gone: nothing more can be acknowledged
                if resp.status_code == 201:
                    self.acknowledged.append(name)
                    self.acked_at.append(time.monotonic())
                else:  # (a 503 while etcd elects a new leader)
                    self.refused += 1
                    time.sleep(0.1)


def diagnose(server: Server, node_state: Path, what: str) -> str:
    """What a failed assertion shows: the pods, ReplicaSets and events as B has them, the node's log."""
    node_log = (node_state.parent / f"{node_state.name}.log").read_text(errors="replace")
    return "\n".join([what, server.kubectl("get", "pods,rs", "-o", "wide", check=False),
                      server.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False)[-4000:],
                      (server.state / "up.log").read_text(errors="replace")[-4000:], node_log[-6000:]])


def renewed_after(server: Server, node: str, since: float) -> bool:
    """The node's Lease (kube-node-lease) renewed after the monotonic moment `since`."""
    lease = json.loads(server.kubectl("-n", "kube-node-lease", "get", "lease", node, "-o", "json"))
    renewed = datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00")).timestamp()
    return renewed > time.time() - (time.monotonic() - since)  # wall-clock: the Lease's times


def holder(server: Server) -> str:
    return str(json.loads(server.kubectl(*LEASE))["spec"].get("holderIdentity") or "")


def ready_condition(server: Server, node: str) -> dict[str, Any]:
    conditions = server.node(node).get("status", {}).get("conditions") or []
    return next(c for c in conditions if c["type"] == "Ready")


def podman_pods(state: Path) -> dict[str, list[dict[str, Any]]]:
    """The node's running Podman pods by the API pod uid they run."""
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for pod in json.loads(podman(state, "pod", "ps", "--format", "json") or "[]"):
        uid = (pod.get("Labels") or {}).get(POD_UID)
        if uid and pod.get("Status") == "Running":
            by_uid.setdefault(uid, []).append(pod)
    return by_uid


def test_a_joined_node_fails_over_when_the_leading_server_is_killed_mid_rollout(tmp_path: Path) -> None:
    if not Path(KUBECTL).exists():
        pytest.skip("kubectl 1.32 is missing")
    etcd = cluster_or_skip()
    dirs = NodeDirs()
    node = f"ha-{uuid.uuid4().hex[:6]}"
    cidr = _cluster_cidr()
    with ExitStack() as stack:
        stack.callback(etcd.remove)
        a, a_proc = stack.enter_context(orchestra_server(tmp_path / "a", etcd, cidr))
        token = (a.state / "token").read_text().strip()  # B: the cluster's token and a fresh state dir
        b, _ = stack.enter_context(orchestra_server(tmp_path / "b", etcd, cidr, "--token", token))
        for name in ("token", "encryption-config.json", "pki/ca.crt", "pki/ca.key", "pki/sa.key"):
            assert (b.state / name).read_bytes() == (a.state / name).read_bytes(), name
        assert "pass its token with --token" in refused(tmp_path / "c", etcd)
        assert "holds another cluster" in refused(tmp_path / "d", etcd, "--token", "not-the-token")
        stack.callback(dirs.clean)  # the node stops (and its pods go) while B still serves
        assert f"_{a.url.removeprefix('https://')}_" in holder(b)  # A started first: it leads

        state = dirs.new(node)
        dirs.joiners.append(join(a.url, state, a.token(), "--node-name", node, "--timings", "fast",
                                 "--no-network"))
        wait("the joined node Ready", lambda: a.kubectl("get", "node", node, check=False)
             and a.ready(node) == "True", timeout=90)
        wait("the node to learn server B", lambda: (state / "servers.json").exists()
             and b.url in json.loads((state / "servers.json").read_text())["servers"], timeout=30)
        # A's kubeconfig lists B as a context of its own (current-context stays A)
        wait("A's kubeconfig naming B", lambda: b.url in (a.state / "kubeconfig").read_text(), timeout=30)
        contexts = a.kubectl("config", "get-contexts", "-o", "name").split()
        assert a.kubectl("config", "current-context").strip() == "orchestra"
        assert f"orchestra-{b.url.removeprefix('https://')}" in contexts

        a.kubectl("apply", "-f", "-", input=json.dumps(deployment(node)))
        a.kubectl("rollout", "status", "deploy/web", "--timeout=90s")
        ready_before = ready_condition(a, node)

        writer = Writer(a)
        writer.start()
        wait("writes through A", lambda: len(writer.acknowledged) >= 5, timeout=30)
        etcd.members[0].kill()  # the servers' first etcd endpoint: 2 of 3 members left
        killed_member = time.monotonic()
        wait("writes on 2 of 3 etcd members", lambda: any(t > killed_member for t in writer.acked_at[-3:]),
             timeout=30)

        b.kubectl("set", "env", "deploy/web", "ROLLOUT=2")
        time.sleep(0.5)  # the rollout under way (A's controllers lead)
        a_proc.send_signal(signal.SIGKILL)
        a_proc.wait(timeout=10)
        killed = time.monotonic()
        writer.join(timeout=15)
        assert not writer.is_alive()
        leader = wait("B to take the Lease", lambda: (h := holder(b)) and f"_{b.url[8:]}_" in h and h,
                      timeout=30)
        took_over = time.monotonic() - killed
        assert took_over <= FAST_LEASE_SECONDS + 4, leader  # (+ retry and polling)

        status = subprocess.run([sys.executable, "-m", "orchestra", "status", "--kubeconfig",
                                 str(b.state / "kubeconfig")], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0 and f"leader: {leader}" in status.stdout, status
        rows = {line.split()[0]: line.split()[2] for line in status.stdout.splitlines()[1:]
                if "_127.0.0.1:" in line and not line.startswith("leader:")}
        assert rows[leader] == "leader", status.stdout

        rollout = subprocess.run([KUBECTL, "--kubeconfig", str(b.state / "kubeconfig"), "rollout", "status",
                                  "deploy/web", "--timeout=50s"], capture_output=True, text=True, timeout=60)
        assert rollout.returncode == 0, diagnose(b, state, rollout.stdout + rollout.stderr)
        names = {c["metadata"]["name"] for c in json.loads(b.kubectl("get", "cm", "-o", "json"))["items"]}
        missing = set(writer.acknowledged) - names
        assert not missing and len(writer.acknowledged) >= 5, sorted(missing)

        assert dirs.joiners[0].poll() is None  # the node runs on, through B
        ready = ready_condition(b, node)
        assert ready["status"] == "True", ready
        assert ready["lastTransitionTime"] == ready_before["lastTransitionTime"], ready  # never NotReady
        log = (state.parent / f"{state.name}.log").read_text(errors="replace")
        assert f"moving to {b.url}" in log, log[-3000:]

        pods = [p for p in json.loads(b.kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
                if not p["metadata"].get("deletionTimestamp")]
        assert len(pods) == 3 and all(p["status"].get("phase") == "Running" for p in pods), pods
        assert all(any(e.get("name") == "ROLLOUT" for e in p["spec"]["containers"][0].get("env") or [])
                   for p in pods)
        uids = {p["metadata"]["uid"] for p in pods}
        running = wait("Podman to run exactly the API's pods", lambda: (found := podman_pods(state))
                       and set(found) == uids and found, timeout=30)
        assert all(len(sandboxes) == 1 for sandboxes in running.values()), running  # no pod twice

        # a restarted join, still given A's URL, reaches B from <state-dir>/servers.json and adopts its pods
        stop(dirs.joiners[0])
        restarted = time.monotonic()
        dirs.joiners.append(join(a.url, state, "unused-on-a-resume", "--node-name", node, "--timings", "fast",
                                 "--no-network"))
        wait("the restarted node to renew its Lease through B", lambda: renewed_after(b, node, restarted),
             timeout=60)
        log = (state.parent / f"{state.name}.log").read_text(errors="replace")
        assert f"moving to {b.url}" in log and dirs.joiners[1].poll() is None, log[-3000:]
        assert ready_condition(b, node)["status"] == "True"
        again = wait("Podman to run the same pods", lambda: (found := podman_pods(state))
                     and set(found) == uids and found, timeout=30)
        assert all(len(sandboxes) == 1 for sandboxes in again.values()), again
        print(f"acknowledged {len(writer.acknowledged)} writes through A ({writer.refused} refused while "
              f"etcd elected a leader); {leader} took the Lease {took_over:.1f} s after the kill")
