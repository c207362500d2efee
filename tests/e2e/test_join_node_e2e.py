"""A real joined node on this host: `orchestra up --no-network --state-dir A` and `orchestra join ...
--state-dir B --node-name worker-1` with its own Podman under B; a Deployment pinned to worker-1 runs a
real container in B's Podman with a pod IP from worker-1's podCIDR; kubectl logs, exec and
port-forward reach that pod through worker-1's kubelet API (its serving certificate approved by the
server without a hand); stopping the joiner makes the Node NotReady. Join refusals (wrong token, a CA
that is not the pinned one, an unreachable server, a name held by a live node), each with its
message."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL
from tests.e2e.joinnodes import (
    NodeDirs,
    Server,
    bridge,
    bridge_exists,
    free_port,
    join,
    orchestra_up,
    podman,
    stop,
    wait,
)

pytestmark = pytest.mark.kubectl
SCRIPT = ("mkdir -p /srv && echo served by worker-1 > /srv/index.html && echo hello from worker-1"
          " && exec httpd -f -p 8080 -h /srv")
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pinned"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "pinned"}}, "template": {
        "metadata": {"labels": {"app": "pinned"}},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "worker-1"}, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": "localhost/busybox:latest", "imagePullPolicy": "Never",
                                 "command": ["sh", "-c", SCRIPT]}]}}},
}


def _cluster_cidr() -> str:
    """A 10.N.0.0/16 no route on this host overlaps: other clusters' joined nodes (tests running beside
    this one) have bridges on 10.244.1.0/24, and the API server reaches a pod on worker-1 by its IP
    through the host."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, timeout=10)
    routed = routes.stdout.split("\n")
    # and never a range another test routes on the host at fixed addresses, though it may not yet when
    # this one starts (both run at once under ./dev test's two workers): 10.231 (test_auth_podman's
    # services), 10.232 (test_join_network_e2e's link), 10.243 (the --nodes link), 10.244-246 (the
    # default cluster CIDR and the routes tests/net writes)
    taken = {line.split(".")[1] for line in routed if line.startswith("10.")} | {
        "231", "232", "243", "244", "245", "246"}
    return f"10.{random.choice([n for n in range(100, 250) if str(n) not in taken])}.0.0/16"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with orchestra_up(tmp_path_factory.mktemp("A"), "--no-network", "--no-dashboard", "--timings", "fast",
                      "--stop-pods", "--cluster-cidr", _cluster_cidr()) as srv:
        yield srv


@pytest.fixture
def node_dirs() -> Iterator[NodeDirs]:
    dirs = NodeDirs()
    try:
        yield dirs
    finally:
        dirs.clean()


def _join(server: Server, state: Path, token: str, *extra: str, url: str = "") -> subprocess.Popen[bytes]:
    """A node in this host's network namespace, beside the server: its network is the server's to run
    (--no-network)."""
    return join(url or server.url, state, token, "--timings", "fast", "--no-network", *extra)


def _port_forward_get(server: Server, pod: str) -> bytes:
    """`kubectl port-forward pod :8080` and one HTTP request through it."""
    env = {**os.environ, "KUBECONFIG": str(server.state / "kubeconfig"), "HOME": str(server.state)}
    proc = subprocess.Popen([KUBECTL, "port-forward", pod, ":8080"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # Forwarding from 127.0.0.1:PORT -> 8080
        assert b"->" in line, line + proc.stdout.read()
        local = int(line.split(b"127.0.0.1:")[1].split(b" ")[0])
        with socket.create_connection(("127.0.0.1", local), timeout=30) as conn:
            conn.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := conn.recv(4096):  # HTTP/1.0: the answer ends when the pod hangs up
                answer += chunk
        return answer
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def _check_streams(server: Server, pod: str, kubelet_port: int) -> None:
    """logs, exec and port-forward of a pod on worker-1: API server -> worker-1's kubelet API -> Podman."""
    node = server.node("worker-1")
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == kubelet_port
    wait("worker-1's serving certificate", lambda: any(
        c.get("status", {}).get("certificate") for c in json.loads(server.kubectl(
            "get", "csr", "-o", "json"))["items"] if c["spec"]["username"] == "system:node:worker-1"
        and c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"), timeout=60)
    csrs = json.loads(server.kubectl("get", "csr", "-o", "json"))["items"]
    serving = [c for c in csrs if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
               and c["spec"]["username"] == "system:node:worker-1"]
    assert [[(k["type"], k["reason"]) for k in c["status"]["conditions"]] for c in serving] == [
        [("Approved", "AutoApproved")]]
    # the kubelet API may still be binding when its certificate is issued: the first logs may say so
    logs = wait("kubectl logs through worker-1", lambda: "hello from worker-1" in server.kubectl(
        "logs", pod, check=False) and server.kubectl("logs", pod), timeout=60)
    assert logs == "hello from worker-1\n"
    assert server.kubectl("exec", pod, "--", "sh", "-c", "hostname; cat /srv/index.html") == (
        f"{pod}\nserved by worker-1\n")
    env = {**os.environ, "KUBECONFIG": str(server.state / "kubeconfig"), "HOME": str(server.state)}
    failed = subprocess.run([KUBECTL, "exec", pod, "--", "sh", "-c", "exit 3"], capture_output=True,
                            timeout=60, env=env)
    assert failed.returncode == 3, failed.stderr
    answer = _port_forward_get(server, pod)
    assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0], answer
    assert answer.endswith(b"served by worker-1\n")


def test_a_joined_node_runs_pods_in_its_own_podman(server: Server, tmp_path: Path,
                                                    node_dirs: NodeDirs) -> None:
    state = node_dirs.new("B")
    short = state.parent
    kubelet_port = free_port()  # (not 10250: another cluster on this host may hold it)
    joiner = _join(server, state, server.token(), "--node-name", "worker-1", "--stop-pods",
                   "--kubelet-port", str(kubelet_port))
    node_dirs.joiners.append(joiner)
    try:
        wait("worker-1 Ready", lambda: "worker-1" in server.kubectl("get", "nodes") and
             server.ready("worker-1") == "True", timeout=90)
        node = server.node("worker-1")
        cidr = node["spec"]["podCIDR"]
        assert node["spec"]["podCIDRs"] == [cidr] and ipaddress.ip_network(cidr).prefixlen == 24
        host = next(n for n in json.loads(server.kubectl("get", "nodes", "-o", "json"))["items"]
                    if n["metadata"]["name"] != "worker-1")
        assert host["spec"]["podCIDR"] != cidr  # never shared
        assert {a["type"] for a in node["status"]["addresses"]} == {"InternalIP", "Hostname"}
        lease = json.loads(server.kubectl("get", "lease", "-n", "kube-node-lease", "worker-1", "-o", "json"))
        assert lease["spec"]["holderIdentity"] == "worker-1"
        server.kubectl("apply", "-f", "-", input=json.dumps(DEPLOYMENT))

        def running() -> Any:
            pods = json.loads(server.kubectl("get", "pods", "-l", "app=pinned", "-o", "json"))["items"]
            return pods[0] if pods and pods[0].get("status", {}).get("phase") == "Running" else None

        pod = wait("the pinned pod running", running, timeout=90)
        assert pod["spec"]["nodeName"] == "worker-1"
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(cidr)
        names = podman(state, "ps", "--format", "{{.Names}}").split()
        assert any(pod["metadata"]["name"] in n for n in names), (names, (short / "B.log").read_text())
        # the node's own storage: the host's Podman does not hold the container
        host_names = subprocess.run(["podman", "ps", "--format", "{{.Names}}"], capture_output=True,
                                    text=True).stdout.split()
        assert not any(pod["metadata"]["name"] in n for n in host_names)
        _check_streams(server, pod["metadata"]["name"], kubelet_port)
        # a second node may not take the live node's name
        second = _join(server, tmp_path / "C", server.token(), "--node-name", "worker-1")
        assert second.wait(timeout=60) == 1
        assert "node name 'worker-1' is held by another live node" in (tmp_path / "C.log").read_text()
        assert not (tmp_path / "C" / "kubeconfig").exists()
    finally:
        stop(joiner)
    assert "Traceback" not in (short / "B.log").read_text()
    assert podman(state, "ps", "-aq").strip() == ""  # --stop-pods removed them
    assert not bridge_exists(state), bridge(state)
    wait("worker-1 NotReady", lambda: server.ready("worker-1") != "True", timeout=60)
    server.kubectl("delete", "deployment", "pinned")


@pytest.mark.parametrize(("case", "message"), [
    ("wrong-token", "the server refused the bootstrap token"),
    ("other-ca", "does not match the join token's pin"),
    ("unreachable", "cannot reach the API server at https://127.0.0.1:"),
], ids=["wrong-token", "other-ca", "unreachable"])
def test_join_refusals(server: Server, tmp_path: Path, case: str, message: str) -> None:
    token = server.token()
    url = ""
    if case == "wrong-token":
        token = token.split("::")[0] + "::zzzzzz.0123456789abcdef"
    elif case == "other-ca":
        token = "K10" + "0" * 64 + "::" + token.split("::")[1]
    else:
        url = f"https://127.0.0.1:{free_port()}"
    joiner = _join(server, tmp_path / "D", token, "--node-name", "worker-9", url=url)
    assert joiner.wait(timeout=60) == 1
    out = (tmp_path / "D.log").read_text()
    assert message in out and "Traceback" not in out
    assert not (tmp_path / "D").exists() or not any((tmp_path / "D").iterdir())


def test_a_kubelet_port_held_by_another_program_stops_the_join(server: Server,
                                                               node_dirs: NodeDirs) -> None:
    short = node_dirs.new("E").parent
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = held.getsockname()[1]
        joiner = _join(server, short / "E", server.token(), "--node-name", "worker-8", "--stop-pods",
                       "--kubelet-port", str(port))
        try:
            assert joiner.wait(timeout=120) == 1
        finally:
            stop(joiner)
    out = (short / "E.log").read_text()
    assert (f"the kubelet API cannot listen on port {port}, which another program holds: "
            "choose another with --kubelet-port") in out, out
    assert "Traceback" not in out
    server.kubectl("delete", "node", "worker-8")


def _pinned_pod(server: Server, node: str) -> Callable[[], Any]:
    def running() -> Any:
        pods = json.loads(server.kubectl("get", "pods", "-l", f"app={node}", "-o", "json"))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return live[0] if live and live[0].get("status", {}).get("phase") == "Running" else None
    return running


def test_a_killed_joined_node_leaves_nothing_behind_the_next_join(server: Server,
                                                                   node_dirs: NodeDirs) -> None:
    """SIGKILL: no clean stop, the pods keep running under conmon; the next join of the same state dir
    (which, like the killed one, was to remove its pods on exit) removes them, and its own clean stop
    leaves no pod or bridge."""
    state = node_dirs.new("K")
    deployment = json.loads(json.dumps(DEPLOYMENT).replace("pinned", "worker-7")
                            .replace("worker-1", "worker-7"))
    args = ("--node-name", "worker-7", "--stop-pods", "--kubelet-port", str(free_port()))
    first = _join(server, state, server.token(), *args)
    node_dirs.joiners.append(first)
    server.kubectl("apply", "-f", "-", input=json.dumps(deployment))
    try:
        pod = wait("worker-7's pod running", _pinned_pod(server, "worker-7"), timeout=120)
        before = set(podman(state, "ps", "-aq", "--no-trunc").split())
        assert before and bridge_exists(state)
        first.kill()  # SIGKILL: nothing of the node's own stop runs
        first.wait(timeout=30)
        assert set(podman(state, "ps", "-q", "--no-trunc").split()) & before  # left running
        second = _join(server, state, server.token(), *args)
        node_dirs.joiners.append(second)
        wait("worker-7's pod running again", lambda: (p := _pinned_pod(server, "worker-7")()) and
             not set(podman(state, "ps", "-aq", "--no-trunc").split()) & before and p, timeout=120)
        # the log line follows the last removal, which `podman ps` may already show done
        wait("the leftovers' removal logged", lambda: "removed" in (state.parent / "K.log").read_text(),
             timeout=30)
        stop(second)
        assert second.returncode == 0, (state.parent / "K.log").read_text()
        assert podman(state, "ps", "-aq").strip() == ""
        assert not bridge_exists(state), bridge(state)
        assert pod["spec"]["nodeName"] == "worker-7"
    finally:
        server.kubectl("delete", "deployment", "worker-7", check=False)
        server.kubectl("delete", "node", "worker-7", check=False)
