"""A real joined node on this host: `orchestra up --no-network --state-dir A` and `orchestra join ...
--state-dir B --node-name worker-1` with its own Podman under B; a Deployment pinned to worker-1 runs a
real container in B's Podman with a pod IP from worker-1's podCIDR; kubectl logs, exec and
port-forward reach that pod through worker-1's kubelet API (its serving certificate approved by the
server without a hand); stopping the joiner makes the Node NotReady. Join refusals (wrong token, a CA
that is not the pinned one, an unreachable server, a name held by a live node), each with its
message."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_cidr() -> str:
    """A 10.N.0.0/16 no route on this host overlaps: other clusters' joined nodes (tests running beside
    this one) have bridges on 10.244.1.0/24, and the API server reaches a pod on worker-1 by its IP
    through the host."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, timeout=10)
    routed = routes.stdout.split("\n")
    taken = {line.split(".")[1] for line in routed if line.startswith("10.")}
    return f"10.{random.choice([n for n in range(100, 250) if str(n) not in taken])}.0.0/16"


def _wait(what: str, fn: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout  # wall-clock: real processes
    while time.monotonic() < deadline:
        found = fn()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    def __init__(self, state: Path, port: int) -> None:
        self.state, self.url = state, f"https://127.0.0.1:{port}"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.state / "kubeconfig"), "HOME": str(self.state)}
        proc = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60,
                              input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def token(self) -> str:
        made = subprocess.run([sys.executable, "-m", "orchestra", "token", "create", "--kubeconfig",
                               str(self.state / "kubeconfig")], capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def node(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", "node", name, "-o", "json")))

    def ready(self, name: str) -> str:
        conditions = self.node(name).get("status", {}).get("conditions") or []
        return next((c["status"] for c in conditions if c["type"] == "Ready"), "")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("A")
    port = _free_port()
    with (state / "up.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orchestra", "up", "--no-network", "--no-dashboard",
                                 "--timings", "fast", "--stop-pods", "--state-dir", str(state), "--listen",
                                 f"127.0.0.1:{port}", "--cluster-cidr", _cluster_cidr()],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            srv = Server(state, port)
            _wait("orchestra up", lambda: proc.poll() is None and (state / "kubeconfig").exists()
                  and subprocess.run([KUBECTL, "--kubeconfig", str(state / "kubeconfig"), "get", "--raw",
                                      "/readyz"], capture_output=True).returncode == 0)
            yield srv
        finally:
            _stop(proc)


class NodeDirs:
    """Short state dirs for joined nodes (podman's CLI refuses a runroot over 50 chars), and their
    joiners; whatever a test does, the finalizer stops the joiners, removes their pods (conmon keeps
    a pod's containers running after its Podman service is gone) and bridges, and the dirs."""

    def __init__(self) -> None:
        self.dirs: list[Path] = []
        self.joiners: list[subprocess.Popen[bytes]] = []

    def new(self, name: str) -> Path:
        short = Path(tempfile.mkdtemp(prefix="jn", dir="/tmp"))
        self.dirs.append(short)
        return short / name

    def clean(self) -> None:
        for joiner in self.joiners:
            _stop(joiner)
        for short in self.dirs:
            for state in [p for p in short.iterdir() if (p / "podman").is_dir()] if short.exists() else []:
                _remove_pods_and_bridge(state)
            shutil.rmtree(short, ignore_errors=True)


def _node_env(state: Path) -> dict[str, str]:
    conf = state / "podman"
    return {**os.environ, "CONTAINERS_CONF": str(conf / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf")}


def _bridge(state: Path) -> str:
    return "orch" + hashlib.sha256(str((state / "podman").resolve()).encode()).hexdigest()[:8]


def _bridge_exists(state: Path) -> bool:
    return subprocess.run(["ip", "link", "show", _bridge(state)], capture_output=True).returncode == 0


def _remove_pods_and_bridge(state: Path) -> None:
    podman = ["podman", "--root", str(state / "podman" / "storage"),
              "--runroot", str(state / "podman" / "run")]
    subprocess.run([*podman, "pod", "rm", "--force", "--all"], capture_output=True, timeout=120,
                   env=_node_env(state))
    subprocess.run([*podman, "system", "reset", "--force"], capture_output=True, timeout=120,
                   env=_node_env(state))
    subprocess.run(["ip", "link", "delete", _bridge(state)], capture_output=True, timeout=30)


@pytest.fixture
def node_dirs() -> Iterator[NodeDirs]:
    dirs = NodeDirs()
    try:
        yield dirs
    finally:
        dirs.clean()


def _join(server: Server, state: Path, token: str, *extra: str, url: str = "") -> subprocess.Popen[bytes]:
    with (state.parent / f"{state.name}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "orchestra", "join", url or server.url,
                                 "--token", token, "--state-dir", str(state), "--timings", "fast", *extra],
                                stdout=log, stderr=subprocess.STDOUT)


def _podman(state: Path, *args: str) -> str:
    root = ["--root", str(state / "podman" / "storage"), "--runroot", str(state / "podman" / "run")]
    done = subprocess.run(["podman", *root, *args], capture_output=True, text=True, timeout=60,
                          env=_node_env(state))
    assert done.returncode == 0, done.stderr
    return done.stdout


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
    _wait("worker-1's serving certificate", lambda: any(
        c.get("status", {}).get("certificate") for c in json.loads(server.kubectl(
            "get", "csr", "-o", "json"))["items"] if c["spec"]["username"] == "system:node:worker-1"
        and c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"), timeout=60)
    csrs = json.loads(server.kubectl("get", "csr", "-o", "json"))["items"]
    serving = [c for c in csrs if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
               and c["spec"]["username"] == "system:node:worker-1"]
    assert [[(k["type"], k["reason"]) for k in c["status"]["conditions"]] for c in serving] == [
        [("Approved", "AutoApproved")]]
    # the kubelet API may still be binding when its certificate is issued: the first logs may say so
    logs = _wait("kubectl logs through worker-1", lambda: "hello from worker-1" in server.kubectl(
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
    kubelet_port = _free_port()  # (not 10250: another cluster on this host may hold it)
    joiner = _join(server, state, server.token(), "--node-name", "worker-1", "--stop-pods",
                   "--kubelet-port", str(kubelet_port))
    node_dirs.joiners.append(joiner)
    try:
        _wait("worker-1 Ready", lambda: "worker-1" in server.kubectl("get", "nodes") and
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

        pod = _wait("the pinned pod running", running, timeout=90)
        assert pod["spec"]["nodeName"] == "worker-1"
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(cidr)
        names = _podman(state, "ps", "--format", "{{.Names}}").split()
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
        _stop(joiner)
    assert "Traceback" not in (short / "B.log").read_text()
    assert _podman(state, "ps", "-aq").strip() == ""  # --stop-pods removed them
    assert not _bridge_exists(state), _bridge(state)
    _wait("worker-1 NotReady", lambda: server.ready("worker-1") != "True", timeout=60)
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
        url = f"https://127.0.0.1:{_free_port()}"
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
            _stop(joiner)
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
    args = ("--node-name", "worker-7", "--stop-pods", "--kubelet-port", str(_free_port()))
    first = _join(server, state, server.token(), *args)
    node_dirs.joiners.append(first)
    server.kubectl("apply", "-f", "-", input=json.dumps(deployment))
    try:
        pod = _wait("worker-7's pod running", _pinned_pod(server, "worker-7"), timeout=120)
        before = set(_podman(state, "ps", "-aq", "--no-trunc").split())
        assert before and _bridge_exists(state)
        first.kill()  # SIGKILL: nothing of the node's own stop runs
        first.wait(timeout=30)
        assert set(_podman(state, "ps", "-q", "--no-trunc").split()) & before  # left running
        second = _join(server, state, server.token(), *args)
        node_dirs.joiners.append(second)
        _wait("worker-7's pod running again", lambda: (p := _pinned_pod(server, "worker-7")()) and
              not set(_podman(state, "ps", "-aq", "--no-trunc").split()) & before and p, timeout=120)
        # the log line follows the last removal, which `podman ps` may already show done
        _wait("the leftovers' removal logged", lambda: "removed" in (state.parent / "K.log").read_text(),
              timeout=30)
        _stop(second)
        assert second.returncode == 0, (state.parent / "K.log").read_text()
        assert _podman(state, "ps", "-aq").strip() == ""
        assert not _bridge_exists(state), _bridge(state)
        assert pod["spec"]["nodeName"] == "worker-7"
    finally:
        server.kubectl("delete", "deployment", "worker-7", check=False)
        server.kubectl("delete", "node", "worker-7", check=False)
