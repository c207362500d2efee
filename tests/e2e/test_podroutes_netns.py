"""PodRoutes against the real kernel: "nodes" and "pods" are network namespaces this test builds
(names start with `orpa`, addresses in 10.231.0.0/16), each node with a netavark-like masquerade of
its pod network, and one PodRoutes per node namespace (RouteKernel(netns=...)) against one in-memory
API holding their Nodes. A pod's TCP connection to a pod of another node must arrive with the
client pod's own address: (a) three nodes on one shared link (host-gw), (b) two nodes on different
subnets behind a router (VXLAN; a router namespace rather than the host's, whose forwarding and
firewall other clusters on this machine may be using), (c) `orchestra up --nodes`' shape, workers
on a bridge of their host. `remove()` must leave no route, rule or device behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from orchestra.client.local import LocalClient
from orchestra.net.common import kind
from orchestra.net.podkernel import COMMENT, ROUTE_PROTO, RouteKernel
from orchestra.net.podroutes import PodRoutes

IP = shutil.which("ip") or "/usr/sbin/ip"
DEVICE = "orpavx0"  # the VXLAN device's name in these namespaces

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="building network namespaces needs root"),
    pytest.mark.skipif(not os.path.exists(IP), reason="iproute2's ip is missing"),
]

LISTEN = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
s.settimeout(10)
print("ready", flush=True)
conn, peer = s.accept()
print(peer[0], flush=True)
"""
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {res.stderr.strip()}")
    return res


def in_ns(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh(IP, "netns", "exec", ns, *args, check=check)


class Lab:
    """Network namespaces made here, all removed (with the links in them) by `close()`."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def netns(self, name: str) -> str:
        sh(IP, "netns", "del", name, check=False)  # a killed run's leftover
        res = sh(IP, "netns", "add", name, check=False)
        if res.returncode != 0:
            pytest.skip(f"cannot make a network namespace: {res.stderr.strip()}")
        self.names.append(name)
        sh(IP, "-n", name, "link", "set", "lo", "up")
        return name

    def close(self) -> None:
        for name in reversed(self.names):
            sh(IP, "netns", "del", name, check=False)

    def link(self, a: str, a_dev: str, b: str, b_dev: str) -> None:
        sh(IP, "-n", a, "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b)
        sh(IP, "-n", a, "link", "set", a_dev, "up")
        sh(IP, "-n", b, "link", "set", b_dev, "up")

    def node_with_pod(self, node: str, pod: str, i: int, pod_net: str) -> str:
        """A pod namespace behind a bridge of `node` on pod_net (a /24: bridge .1, pod .2), with
        netavark's masquerade of it; ip_forward off, for PodRoutes to turn on. Returns the pod's IP."""
        prefix = pod_net.rsplit(".", 1)[0]
        bridge = f"orpa-pb{i}"
        sh(IP, "-n", node, "link", "add", bridge, "type", "bridge")
        sh(IP, "-n", node, "addr", "add", f"{prefix}.1/24", "dev", bridge)
        sh(IP, "-n", node, "link", "set", bridge, "up")
        self.link(node, f"orpa-v{i}", pod, f"orpa-c{i}")
        sh(IP, "-n", node, "link", "set", f"orpa-v{i}", "master", bridge)
        sh(IP, "-n", pod, "addr", "add", f"{prefix}.2/24", "dev", f"orpa-c{i}")
        sh(IP, "-n", pod, "route", "add", "default", "via", f"{prefix}.1")
        in_ns(node, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", pod_net, "!", "-d", pod_net,
              "-j", "MASQUERADE")
        in_ns(node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
        return f"{prefix}.2"


@pytest.fixture
def lab() -> Iterator[Lab]:
    made = Lab()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def client(memory_client: LocalClient) -> LocalClient:
    return memory_client


async def add_node(client: LocalClient, name: str, address: str) -> None:
    await client.create(kind("Node"), None, {"metadata": {"name": name}})
    status = {"addresses": [{"type": "InternalIP", "address": address},
                            {"type": "Hostname", "address": name}]}
    await client.patch(kind("Node"), None, name, {"status": status}, subresource="status")


def our_routes(ns: str) -> list[dict[str, Any]]:
    out = sh(IP, "-n", ns, "-j", "route", "show", "proto", str(ROUTE_PROTO)).stdout
    return list(json.loads(out or "[]"))


def has_vxlan_device(ns: str) -> bool:
    out = sh(IP, "-n", ns, "-j", "link", "show", "type", "vxlan").stdout
    return any(link.get("ifname") == DEVICE for link in json.loads(out or "[]"))


def has_rules(ns: str) -> bool:
    return COMMENT in in_ns(ns, "iptables-save").stdout


def tcp_peer(server_ns: str, client_ns: str, server_ip: str, port: int) -> str:
    """The address a listener in server_ns sees for a connection from client_ns."""
    with subprocess.Popen([IP, "netns", "exec", server_ns, sys.executable, "-c", LISTEN, str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as listener:
        assert listener.stdout is not None
        try:
            assert listener.stdout.readline().strip() == "ready"
            done = in_ns(client_ns, sys.executable, "-c", CONNECT, server_ip, str(port), check=False)
            assert done.returncode == 0, done.stderr
            return listener.stdout.readline().strip()
        finally:
            listener.kill()


def connect_fails(client_ns: str, server_ip: str, port: int) -> bool:
    return in_ns(client_ns, sys.executable, "-c", CONNECT, server_ip, str(port), check=False).returncode != 0


async def until(check: Any) -> None:
    with trio.fail_after(20):
        while not await trio.to_thread.run_sync(check):  # noqa: ASYNC110 (the kernel has no event for us)
            await trio.sleep(0.1)


async def test_host_gw_on_a_shared_link_without_nat(lab: Lab, client: LocalClient) -> None:
    switch = lab.netns("orpa-sw")
    sh(IP, "-n", switch, "link", "add", "orpa-br0", "type", "bridge")
    sh(IP, "-n", switch, "link", "set", "orpa-br0", "up")
    pods: dict[int, str] = {}
    for i in (1, 2, 3):
        node, pod = lab.netns(f"orpa-n{i}"), lab.netns(f"orpa-p{i}")
        lab.link(switch, f"orpa-s{i}", node, f"orpa-e{i}")
        sh(IP, "-n", switch, "link", "set", f"orpa-s{i}", "master", "orpa-br0")
        sh(IP, "-n", node, "addr", "add", f"10.231.0.{i}/24", "dev", f"orpa-e{i}")
        pods[i] = lab.node_with_pod(node, pod, i, f"10.231.{i}.0/24")
        await add_node(client, f"n{i}", f"10.231.0.{i}")
    assert connect_fails("orpa-p1", pods[3], 18080)  # nothing routes pod networks yet
    routers = {i: PodRoutes(client, f"n{i}", own_networks=[f"10.231.{i}.0/24"],
                            kernel=RouteKernel(netns=f"orpa-n{i}"), vxlan_device=DEVICE) for i in (1, 2, 3)}
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for r in routers.values():
                await nursery.start(r.run)
            await until(lambda: len(our_routes("orpa-n1")) == 2 and len(our_routes("orpa-n3")) == 2)
            assert {(r["dst"], r["gateway"]) for r in our_routes("orpa-n1")} == {
                ("10.231.2.0/24", "10.231.0.2"), ("10.231.3.0/24", "10.231.0.3")}
            assert in_ns("orpa-n1", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
            assert routers[1].statistics()["nodes"] == {"host-gw": 2}

            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-p3", "orpa-p1", pods[3], 18080)
            assert seen == pods[1]  # pod A's own address: no masquerade on the way
            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-p1", "orpa-p2", pods[1], 18081)
            assert seen == pods[2]
            # without n1's rules the masquerade takes the connection: the node's address arrives
            await routers[1].kernel.remove_firewall(routers[1].chain)
            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-p3", "orpa-p1", pods[3], 18082)
            assert seen == "10.231.0.1"

            await client.delete(kind("Node"), None, "n3")
            await until(lambda: all(len(our_routes(f"orpa-n{i}")) == 1 for i in (1, 2)))
            assert [r["dst"] for r in our_routes("orpa-n1")] == ["10.231.2.0/24"]
            assert connect_fails("orpa-p1", pods[3], 18083)
            await until(lambda: has_rules("orpa-n1"))  # the change rewrote n1's rules too
            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-p2", "orpa-p1", pods[2], 18084)
            assert seen == pods[1]
            nursery.cancel_scope.cancel()
        assert our_routes("orpa-n1") and has_rules("orpa-n1")  # a stop leaves them
        for r in routers.values():
            await r.remove()
    for i in (1, 2, 3):
        assert our_routes(f"orpa-n{i}") == [] and not has_rules(f"orpa-n{i}")
        assert not has_vxlan_device(f"orpa-n{i}")


async def test_vxlan_between_nodes_behind_a_router_without_nat(lab: Lab, client: LocalClient) -> None:
    router = lab.netns("orpa-rt")
    in_ns(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    pods: dict[int, str] = {}
    for i in (1, 2):
        node, pod = lab.netns(f"orpa-m{i}"), lab.netns(f"orpa-q{i}")
        lab.link(router, f"orpa-r{i}", node, f"orpa-u{i}")
        sh(IP, "-n", router, "addr", "add", f"10.231.{i}0.1/24", "dev", f"orpa-r{i}")
        sh(IP, "-n", node, "addr", "add", f"10.231.{i}0.2/24", "dev", f"orpa-u{i}")
        sh(IP, "-n", node, "route", "add", "default", "via", f"10.231.{i}0.1")
        pods[i] = lab.node_with_pod(node, pod, i, f"10.231.{i}1.0/24")
        await add_node(client, f"m{i}", f"10.231.{i}0.2")
    probe = sh(IP, "-n", "orpa-m1", "link", "add", "orpa-probe", "type", "vxlan", "id", "9",
               "dstport", "4789", check=False)
    if probe.returncode != 0:
        pytest.skip(f"this kernel makes no VXLAN device: {probe.stderr.strip()}")
    sh(IP, "-n", "orpa-m1", "link", "del", "orpa-probe")
    assert connect_fails("orpa-q1", pods[2], 18090)  # the router knows no pod network
    routers = {i: PodRoutes(client, f"m{i}", own_networks=[f"10.231.{i}1.0/24"],
                            kernel=RouteKernel(netns=f"orpa-m{i}"), vxlan_device=DEVICE) for i in (1, 2)}
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for r in routers.values():
                await nursery.start(r.run)
            await until(lambda: len(our_routes("orpa-m1")) == 1 and len(our_routes("orpa-m2")) == 1)
            route = our_routes("orpa-m1")[0]
            assert (route["dst"], route["gateway"], route["dev"]) == ("10.231.21.0/24", "10.231.21.0", DEVICE)
            assert routers[1].statistics()["nodes"] == {"vxlan": 1}

            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-q2", "orpa-q1", pods[2], 18090)
            assert seen == pods[1]
            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-q1", "orpa-q2", pods[1], 18091)
            assert seen == pods[2]
            nursery.cancel_scope.cancel()
        for r in routers.values():
            await r.remove()
    for i in (1, 2):
        assert our_routes(f"orpa-m{i}") == [] and not has_rules(f"orpa-m{i}")
        assert not has_vxlan_device(f"orpa-m{i}")


async def test_workers_on_a_bridge_of_their_host(lab: Lab, client: LocalClient) -> None:
    """`orchestra up --nodes`' shape: the host node's InternalIP is on its uplink, its workers sit on
    a bridge it holds (default route via it). The workers reach each other host-gw; host and workers
    see each other differently (a link on one side, a router on the other) and both use VXLAN."""
    host, host_pod = lab.netns("orpa-h"), lab.netns("orpa-hp")
    sh(IP, "-n", host, "link", "add", "orpa-up", "type", "veth", "peer", "name", "orpa-upp")
    for dev in ("orpa-up", "orpa-upp"):
        sh(IP, "-n", host, "link", "set", dev, "up")
    sh(IP, "-n", host, "addr", "add", "10.231.40.1/24", "dev", "orpa-up")
    sh(IP, "-n", host, "link", "add", "orpa-nb", "type", "bridge")
    sh(IP, "-n", host, "addr", "add", "10.231.30.1/24", "dev", "orpa-nb")
    sh(IP, "-n", host, "link", "set", "orpa-nb", "up")
    pods = {0: lab.node_with_pod(host, host_pod, 0, "10.231.41.0/24")}
    await add_node(client, "h", "10.231.40.1")
    for i in (1, 2):
        node, pod = lab.netns(f"orpa-w{i}"), lab.netns(f"orpa-wp{i}")
        lab.link(host, f"orpa-nv{i}", node, f"orpa-we{i}")
        sh(IP, "-n", host, "link", "set", f"orpa-nv{i}", "master", "orpa-nb")
        sh(IP, "-n", node, "addr", "add", f"10.231.30.{i + 1}/24", "dev", f"orpa-we{i}")
        sh(IP, "-n", node, "route", "add", "default", "via", "10.231.30.1")
        pods[i] = lab.node_with_pod(node, pod, i, f"10.231.3{i}.0/24")
        await add_node(client, f"w{i}", f"10.231.30.{i + 1}")
    names = {0: ("h", "orpa-h", "10.231.41.0/24"), 1: ("w1", "orpa-w1", "10.231.31.0/24"),
             2: ("w2", "orpa-w2", "10.231.32.0/24")}
    routers = {i: PodRoutes(client, name, own_networks=[net], kernel=RouteKernel(netns=ns),
                            vxlan_device=DEVICE) for i, (name, ns, net) in names.items()}
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for r in routers.values():
                await nursery.start(r.run)
            await until(lambda: all(len(our_routes(ns)) == 2 for _n, ns, _net in names.values()))
            assert routers[0].statistics()["nodes"] == {"vxlan": 2}
            assert routers[1].statistics()["nodes"] == {"vxlan": 1, "host-gw": 1}
            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-wp1", "orpa-hp", pods[1], 18100)
            assert seen == pods[0]
            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-hp", "orpa-wp2", pods[0], 18101)
            assert seen == pods[2]
            seen = await trio.to_thread.run_sync(tcp_peer, "orpa-wp2", "orpa-wp1", pods[2], 18102)
            assert seen == pods[1]
            nursery.cancel_scope.cancel()
        for r in routers.values():
            await r.remove()
    for _n, ns, _net in names.values():
        assert our_routes(ns) == [] and not has_rules(ns) and not has_vxlan_device(ns)
