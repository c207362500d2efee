"""A joined node answers Services, cluster DNS and NodePorts and enforces NetworkPolicies, as kube-proxy,
node-local DNS and a network plugin do on every kube node (root, real Podman, real kernel, kubectl 1.32).

The node runs in a network namespace of its own (`orpb-n<pid>`, on a veth pair: the host side
10.232.0.1/30, the node's side 10.232.0.2/30, its default route via the host side), as on another
machine; the server is `orchestra up --no-network --no-podman --memory --advertise-address 10.232.0.1`
on the host, so the namespace's node is the cluster's only node and the only one with service
networking (nothing of it touches the host's network namespace). The node joins with `ip netns exec
... orchestra join https://10.232.0.1:PORT --stop-pods`. With kubectl: a 2-replica busybox httpd
Deployment, a NodePort Service and a client pod; from the client pod the Service answers by DNS name
and by ClusterIP, the NodePort answers on 10.232.0.2 (also from the host), `https://kubernetes.default.svc`
reaches the API server; a NetworkPolicy denying ingress to the web pods stops the answers and deleting
it brings them back. At the end nothing is left: no pod, no process in the namespace, no route or
nftables table of the node's, no namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL
from tests.e2e.joinnodes import NodeDirs, Server, free_port, join, orchestra_up, podman, stop, wait

pytestmark = [pytest.mark.kubectl, pytest.mark.podman, pytest.mark.slow]

HOST_IP, NODE_IP = "10.232.0.1", "10.232.0.2"
NODE = "netnode"
HTTPD = "mkdir -p /www && echo web-ok > /www/index.html && exec httpd -f -p 8080 -h /www"
IMAGE = "localhost/busybox:latest"
WEB: list[dict[str, Any]] = [
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
         "metadata": {"labels": {"app": "web"}},
         "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
             "name": "httpd", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sh", "-c", HTTPD],
             "ports": [{"containerPort": 8080}],
             "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
     "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
     "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
         "name": "c", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}},
]
DENY_WEB = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny-web"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}}


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check:
        assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """The node's network namespace on a veth pair to the host; removed (with the pair) at the end."""
    name, host_link, node_link = (f"orpb-{kind}{os.getpid()}" for kind in "nhp")
    ip("netns", "add", name)
    try:
        ip("link", "add", host_link, "type", "veth", "peer", "name", node_link)
        ip("link", "set", node_link, "netns", name)
        ip("addr", "add", f"{HOST_IP}/30", "dev", host_link)
        ip("link", "set", host_link, "up")
        ip("-n", name, "addr", "add", f"{NODE_IP}/30", "dev", node_link)
        ip("-n", name, "link", "set", node_link, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "route", "add", "default", "via", HOST_IP)
        yield name
    finally:
        ip("link", "del", host_link, check=False)  # its peer goes with it
        ip("netns", "del", name, check=False)


@pytest.fixture(scope="module")
def server(netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with orchestra_up(tmp_path_factory.mktemp("server"), "--no-network", "--no-podman", "--memory",
                      "--advertise-address", HOST_IP, "--no-dashboard") as srv:
        yield srv


@pytest.fixture
def node_dirs(netns: str) -> Iterator[NodeDirs]:
    dirs = NodeDirs(prefix=["ip", "netns", "exec", netns])
    try:
        yield dirs
    finally:
        dirs.clean()


def _exec_wget(server: Server, url: str, *flags: str) -> tuple[bool, str]:
    """`wget -qO- URL` in the client pod, for 3 s at most (`timeout`: this busybox's own -T
    segfaults): (answered, its output and errors)."""
    env = {**os.environ, "KUBECONFIG": str(server.state / "kubeconfig"), "HOME": str(server.state)}
    done = subprocess.run([KUBECTL, "exec", "client", "--", "timeout", "3", "wget", "-qO-", *flags, url],
                          capture_output=True, text=True, timeout=60, env=env)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def _answers(server: Server, url: str) -> str | None:
    answered, out = _exec_wget(server, url)
    return out if answered else None


def _service_range(server: Server) -> str:
    """The serviceCIDR the server publishes for its nodes."""
    return server.kubectl("get", "configmap", "-n", "kube-system", "orchestra-cluster", "-o",
                          "jsonpath={.data.serviceCIDR}")


def _routed(netns: str, cidr: str) -> bool:
    return f"local {cidr}" in ip("-n", netns, "route", "show", "table", "local", cidr).stdout


def _ready_pods(server: Server) -> list[dict[str, Any]]:
    pods = json.loads(server.kubectl("get", "pods", "-o", "json"))["items"]
    ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in p.get("status", {}).get("conditions") or [])]
    return ready if len(ready) == 3 else []


def test_a_joined_node_in_its_own_namespace_serves_services_dns_nodeports_and_policies(
        netns: str, server: Server, node_dirs: NodeDirs) -> None:
    in_ns = ["ip", "netns", "exec", netns]
    state = node_dirs.new("N")
    joiner = join(f"https://{HOST_IP}:{server.url.rsplit(':', 1)[1]}", state, server.token(),
                  "--node-name", NODE, "--stop-pods", "--timings", "fast", prefix=in_ns)
    node_dirs.joiners.append(joiner)
    log = state.parent / "N.log"
    try:
        wait(f"{NODE} Ready", lambda: NODE in server.kubectl("get", "nodes") and server.ready(NODE) == "True",
             timeout=120)
        assert server.node(NODE)["status"]["addresses"][0] == {"type": "InternalIP", "address": NODE_IP}
        server.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                             "items": WEB}))
        pods = wait("the web pods and the client ready", lambda: _ready_pods(server), timeout=120)
        assert {p["spec"]["nodeName"] for p in pods} == {NODE}
        service = json.loads(server.kubectl("get", "service", "web", "-o", "json"))
        cluster_ip, node_port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["nodePort"]
        # the Service by its DNS name (the node's cluster DNS) and by its ClusterIP (the node's proxy)
        by_name = "http://web.default.svc.cluster.local/"
        assert wait("the Service by name", lambda: _answers(server, by_name), timeout=60) == "web-ok", log
        assert _answers(server, f"http://{cluster_ip}/") == "web-ok"
        # the NodePort on the node's address, from its pod and from the host
        assert _answers(server, f"http://{NODE_IP}:{node_port}/") == "web-ok"
        with urllib.request.urlopen(f"http://{NODE_IP}:{node_port}/", timeout=10) as answer:
            assert answer.read() == b"web-ok\n"
        # the API server through the kubernetes Service (its endpoint: the advertised address): from the
        # pod by name (busybox's own TLS shares no cipher suite with the API server's ECDSA certificate,
        # so the pod speaks plain HTTP to the HTTPS port and gets the API server's 400 for it) ...
        _, out = _exec_wget(server, "http://kubernetes.default.svc:443/healthz", "-S")
        assert "HTTP/1.0 400 Bad Request" in out, out
        # ... and over HTTPS from the node, the serving certificate checked for that name
        ca = server.state / "pki" / "ca.crt"
        healthz = subprocess.run([*in_ns, "curl", "-sS", "--max-time", "5", "--cacert", str(ca), "--resolve",
                                  "kubernetes.default.svc:443:10.96.0.1", "https://kubernetes.default.svc/healthz"],
                                 capture_output=True, text=True, timeout=30)
        assert healthz.stdout == "ok", healthz.stderr
        # a NetworkPolicy isolating the web pods for ingress: the node's nftables drop the proxied legs
        server.kubectl("apply", "-f", "-", input=json.dumps(DENY_WEB))
        wait("the policy to refuse", lambda: _answers(server, f"http://{cluster_ip}/") is None, timeout=30)
        assert _answers(server, by_name) is None
        server.kubectl("delete", "networkpolicy", "deny-web")
        back = wait("the answer back", lambda: _answers(server, f"http://{cluster_ip}/"), timeout=30)
        assert back == "web-ok"
        rules = subprocess.run([*in_ns, "nft", "list", "table", "inet", "orchestra-netpol"],
                               capture_output=True)
        assert rules.returncode == 0  # the node's table, in its namespace
        assert _routed(netns, _service_range(server))  # the service range, routed to lo in the namespace
    finally:
        server.kubectl("delete", "deployment,service", "web", check=False)
        server.kubectl("delete", "pod", "client", "--grace-period=1", check=False)
        stop(joiner)
    out = log.read_text()
    assert joiner.returncode == 0 and "Traceback" not in out, out
    _nothing_left(netns, state, _service_range(server))


def _nothing_left(netns: str, state: Path, service_range: str) -> None:
    in_ns = ["ip", "netns", "exec", netns]
    assert podman(state, "ps", "-aq", prefix=in_ns).strip() == ""  # --stop-pods removed them
    assert ip("netns", "pids", netns).stdout.strip() == ""  # no process left in the namespace
    assert not _routed(netns, service_range)
    assert subprocess.run([*in_ns, "nft", "list", "table", "inet", "orchestra-netpol"],
                          capture_output=True).returncode != 0  # the enforcer removed its table


def test_a_second_node_in_the_namespace_is_told_to_use_no_network(netns: str, server: Server,
                                                                  node_dirs: NodeDirs) -> None:
    """Two nodes with service networking cannot share a namespace: the second one's DNS address is
    taken, and it stops with a message naming --no-network before it changes anything of the first's
    (its route, its nftables table)."""
    in_ns = ["ip", "netns", "exec", netns]
    url = f"https://{HOST_IP}:{server.url.rsplit(':', 1)[1]}"
    first = join(url, node_dirs.new("F"), server.token(), "--node-name", "first", "--stop-pods", prefix=in_ns)
    node_dirs.joiners.append(first)
    try:
        wait("first Ready", lambda: "first" in server.kubectl("get", "nodes")
             and server.ready("first") == "True", timeout=120)
        second_state = node_dirs.new("S")
        second = join(url, second_state, server.token(), "--node-name", "second", "--stop-pods",
                      "--kubelet-port", str(free_port()), prefix=in_ns)
        node_dirs.joiners.append(second)
        assert second.wait(timeout=120) == 1
        out = (second_state.parent / "S.log").read_text()
        assert "cannot serve cluster DNS on 10.96.0.10:53" in out and "--no-network" in out, out
        assert "Traceback" not in out
        assert first.poll() is None and server.ready("first") == "True"
        # the first one's route stays: the second saw its live owner record for this namespace
        assert _routed(netns, _service_range(server))
    finally:
        stop(first)
        server.kubectl("delete", "node", "first", "second", "--ignore-not-found", check=False)
