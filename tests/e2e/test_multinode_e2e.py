"""`orchestra up --nodes 3` end to end (pytest.mark.podman, root): the host's node and two worker nodes,
each in its own network namespace with its own Podman, joined through `orchestra join`; driven with
kubectl 1.32 as a user would.

One cluster serves the module (it binds the service range and 10.96.0.10:53 on the host, so only one
network-enabled orchestra may run: the preflight of tests/e2e/test_network_podman.py refuses to start
otherwise). `--stop-pods` at the end removes the pods, the workers' namespaces and the bridge; the last
test checks that nothing is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.test_network_podman import preflight

pytestmark = [pytest.mark.podman, pytest.mark.slow]

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
IMAGE = "localhost/busybox:latest"
WORKERS = ("worker-1", "worker-2")
HTTPD = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, cond: Callable[[], T | None], limit: float = 60.0, interval: float = 0.25) -> T:
    deadline = time.monotonic() + limit
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:g} s waiting for {what}")
        time.sleep(interval)


class MultiNode:
    def __init__(self, state: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.state, self.proc, self.log = state, proc, log

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        res = subprocess.run([KUBECTL, "--kubeconfig", str(self.state / "kubeconfig"), *args],
                             capture_output=True, text=True, timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}): "
                                 f"{res.stderr}{res.stdout}")
        return res.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def apply(self, manifest: dict[str, Any]) -> None:
        res = subprocess.run([KUBECTL, "--kubeconfig", str(self.state / "kubeconfig"), "apply", "-f", "-"],
                             input=json.dumps(manifest), capture_output=True, text=True, timeout=60,
                             check=False)
        assert res.returncode == 0, res.stderr

    def nodes(self) -> dict[str, Any]:
        return {n["metadata"]["name"]: n for n in self.json("get", "nodes")["items"]}

    def ready(self, name: str) -> bool:
        node = self.nodes().get(name) or {}
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in (node.get("status") or {}).get("conditions") or [])

    def address(self, name: str) -> str:
        node = self.nodes()[name]
        return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return list(self.json("get", "pods", "-l", selector)["items"])

    def running(self, selector: str) -> list[dict[str, Any]]:
        def ready(pod: dict[str, Any]) -> bool:
            conditions = pod.get("status", {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")
                and p.get("status", {}).get("podIP") and ready(p)]

    def fetch(self, pod: str, url: str, *, seconds: int = 6) -> str | None:
        """What `wget` in `pod` gets from `url`, or None when it fails."""
        res = subprocess.run([KUBECTL, "--kubeconfig", str(self.state / "kubeconfig"), "exec", pod, "--",
                              "timeout", str(seconds), "wget", "-qO-", url],
                             capture_output=True, text=True, timeout=seconds + 30, check=False)
        return res.stdout.strip() if res.returncode == 0 else None

    def worker_pid(self, name: str) -> int:
        """The `orchestra join` process of a worker (the child of the reaper `up` started)."""
        reaper = int((self.state / "nodes" / f"{name}.pid").read_text())
        children = Path(f"/proc/{reaper}/task/{reaper}/children").read_text().split()
        return int(children[0])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def cluster() -> Iterator[MultiNode]:
    preflight()
    if shutil.which("ip") is None or not os.path.exists(KUBECTL):
        pytest.fail("needs iproute2 and kubectl 1.32")
    base = Path(tempfile.mkdtemp(prefix="mn", dir="/tmp"))  # short: the workers' Podman sockets live below
    state, log = base / "s", base / "up.log"
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestra", "up", "--nodes", "3", "--timings", "fast", "--stop-pods",
             "--memory", "--no-dashboard", "--state-dir", str(state), "--listen", f"127.0.0.1:{port}",
             "--ingress-listen", "off", "--ingress-tls-listen", "off"],
            stdout=out, stderr=subprocess.STDOUT)
    mn = MultiNode(state, proc, log)
    try:
        wait("the API", lambda: (state / "kubeconfig").exists() and proc.poll() is None
             and mn.kubectl("get", "--raw", "/readyz", check=False) == "ok", limit=60)
        wait("three Ready nodes", lambda: len(mn.nodes()) == 3 and all(mn.ready(n) for n in mn.nodes()),
             limit=120, interval=0.5)
        yield mn
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(log.read_text(errors="replace")[-20000:])


def test_the_workers_are_real_nodes_on_their_own_addresses_and_pod_cidrs(cluster: MultiNode) -> None:
    nodes = cluster.nodes()
    assert set(WORKERS) <= set(nodes) and len(nodes) == 3
    addresses = {cluster.address(name) for name in nodes}
    assert {cluster.address(w) for w in WORKERS} == {"10.243.0.2", "10.243.0.3"} and len(addresses) == 3
    cidrs = [nodes[w]["spec"]["podCIDR"] for w in WORKERS]
    assert len(set(cidrs)) == 2 and all(c.startswith("10.244.") for c in cidrs)
    for w in WORKERS:
        assert nodes[w]["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("podman://")


WEB = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {
        "replicas": 6, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                           "whenUnsatisfiable": "DoNotSchedule",
                                           # a lost node's taint takes it out of the spread (kube's default,
                                           # Ignore, would keep its 0 pods in the count: nothing could move)
                                           "nodeTaintsPolicy": "Honor",
                                           "labelSelector": {"matchLabels": {"app": "web"}}}],
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "web", "image": IMAGE, "command": ["sh", "-c", HTTPD],
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                               "periodSeconds": 1}}]}},
    },
}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"type": "NodePort", "selector": {"app": "web"},
                    "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30880}]}}


def client_pod(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "client"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": IMAGE,
                                     "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]}}


@pytest.fixture(scope="module")
def web(cluster: MultiNode) -> dict[str, list[dict[str, Any]]]:
    """The web Deployment and Service, and a client pod on every node; {node: its web pods}."""
    cluster.apply(WEB)
    cluster.apply(SERVICE)
    for node in cluster.nodes():
        cluster.apply(client_pod(f"client-{node}", node))
    wait("6 ready web pods", lambda: len(cluster.running("app=web")) == 6, limit=120, interval=0.5)
    wait("3 client pods", lambda: len([p for p in cluster.pods("app=client")
                                       if p["status"].get("phase") == "Running"]) == 3, limit=90)
    by_node: dict[str, list[dict[str, Any]]] = {}
    for pod in cluster.running("app=web"):
        by_node.setdefault(pod["spec"]["nodeName"], []).append(pod)
    return by_node


def test_a_six_replica_deployment_spreads_over_the_three_nodes(cluster: MultiNode,
                                                               web: dict[str, list[dict[str, Any]]]) -> None:
    assert set(web) == set(cluster.nodes())
    assert sorted(len(pods) for pods in web.values()) == [2, 2, 2]


def test_pods_reach_pods_on_other_nodes_by_ip_service_name_and_nodeport(
        cluster: MultiNode, web: dict[str, list[dict[str, Any]]]) -> None:
    host = next(n for n in cluster.nodes() if n not in WORKERS)
    a, b, c = "worker-1", "worker-2", host
    target = web[b][0]
    # by pod IP, from node A to a pod on node B: it answers with its own name (no NAT in between)
    url = f"http://{target['status']['podIP']}:8080/"
    assert cluster.fetch(f"client-{a}", url) == target["metadata"]["name"]
    # and from the host's node to a worker's pod, and from a worker to the host's pods
    assert cluster.fetch(f"client-{c}", url) == target["metadata"]["name"]
    host_pod = web[c][0]
    assert cluster.fetch(f"client-{a}", f"http://{host_pod['status']['podIP']}:8080/") == \
        host_pod["metadata"]["name"]
    names = {p["metadata"]["name"] for pods in web.values() for p in pods}
    # by Service name through node A's DNS and service proxy
    assert cluster.fetch(f"client-{a}", "http://web.default.svc.cluster.local/") in names
    # by NodePort on node C's address, and on node B's
    for node in (c, b):
        assert cluster.fetch(f"client-{a}", f"http://{cluster.address(node)}:30880/") in names


def test_logs_exec_and_port_forward_reach_a_pod_on_a_worker(cluster: MultiNode,
                                                            web: dict[str, list[dict[str, Any]]]) -> None:
    pod = web["worker-1"][0]["metadata"]["name"]
    assert cluster.kubectl("exec", pod, "--", "hostname").strip() == pod
    cluster.kubectl("exec", pod, "--", "sh", "-c", "echo hello-from-worker > /proc/1/fd/1")
    wait("the log line", lambda: "hello-from-worker" in cluster.kubectl("logs", pod), limit=20)
    port = _free_port()
    forward = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.state / "kubeconfig"), "port-forward",
                                f"pod/{pod}", f"{port}:8080"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        def fetched() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as resp:
                    return str(resp.read().decode().strip())
            except OSError:
                return None
        assert wait("port-forward", fetched, limit=20) == pod
    finally:
        forward.terminate()
        forward.wait(10)


def test_a_network_policy_blocks_cross_node_ingress_until_removed(
        cluster: MultiNode, web: dict[str, list[dict[str, Any]]]) -> None:
    target = web["worker-2"][0]
    url = f"http://{target['status']['podIP']}:8080/"
    assert cluster.fetch("client-worker-1", url) == target["metadata"]["name"]
    cluster.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "web-deny"},
                   "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}})
    try:
        wait("the request to be blocked", lambda: cluster.fetch("client-worker-1", url, seconds=3) is None,
             limit=20, interval=0.5)
    finally:
        cluster.kubectl("delete", "networkpolicy", "web-deny")
    assert wait("the request to pass again", lambda: cluster.fetch("client-worker-1", url), limit=20) == \
        target["metadata"]["name"]


def test_a_lost_worker_loses_its_pods_to_the_others_and_rejoins_without_duplicates(
        cluster: MultiNode, web: dict[str, list[dict[str, Any]]]) -> None:
    lost = "worker-2"
    before = {p["metadata"]["name"] for p in web[lost]}
    pid = cluster.worker_pid(lost)
    os.kill(pid, signal.SIGSTOP)  # it stops heartbeating; its containers keep running
    stopped = time.monotonic()
    try:
        wait(f"{lost} not Ready", lambda: not cluster.ready(lost), limit=40, interval=0.5)

        def moved() -> bool:
            pods = cluster.running("app=web")
            return len(pods) == 6 and all(p["spec"]["nodeName"] != lost for p in pods)
        wait("6 ready web pods on the other nodes", moved, limit=90, interval=1)
        print(f"pods moved {time.monotonic() - stopped:.1f} s after the worker stopped")
    finally:
        os.kill(pid, signal.SIGKILL)  # a crash: `up` starts the worker again, which resumes as itself
    wait(f"{lost} Ready again", lambda: cluster.ready(lost), limit=90, interval=0.5)
    sock = cluster.state / "nodes" / lost / "podman" / "podman.sock"

    def only_live_pods() -> bool:
        out = subprocess.run(["podman", "--url", f"unix://{sock}", "ps", "--format", "json"],
                             capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            return False
        containers = json.loads(out.stdout or "[]")
        running = {(c.get("Labels") or {}).get("orchestra.io/pod-name") for c in containers}
        return not (running & before)
    wait("the evicted pods' containers gone from the worker", only_live_pods, limit=60, interval=1)
    names = [p["metadata"]["name"] for p in cluster.pods("app=web")]
    assert len(names) == len(set(names))
    assert not {p["metadata"]["name"] for p in cluster.pods("app=web")} & before


def test_stopping_removes_the_workers_namespaces_and_pods(cluster: MultiNode) -> None:
    cluster.proc.send_signal(signal.SIGTERM)
    assert cluster.proc.wait(timeout=120) == 0, cluster.log_text()[-5000:]
    namespaces = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=False)
    names = {n["name"] for n in json.loads(namespaces.stdout or "[]")}
    assert not {f"orchestra-{w}" for w in WORKERS} & names
    assert subprocess.run(["ip", "link", "show", "dev", "orchnodes"], capture_output=True,
                          check=False).returncode != 0
    left = subprocess.run(["pgrep", "-f", f"state-dir {cluster.state}/nodes"], capture_output=True, text=True,
                          check=False)
    assert not left.stdout.strip(), left.stdout
