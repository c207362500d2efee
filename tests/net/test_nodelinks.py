"""net/nodelinks.py against the real kernel (root): worker nodes' namespaces on one bridge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from orchestra.net.nodelinks import NodeLinks, host_veth, netns_name
from orchestra.net.routes import NetworkSetupError

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 (it makes network namespaces)")

BRIDGE = "orchnltest"
NODES = ["nltest-1", "nltest-2"]


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def links() -> Iterator[NodeLinks]:
    made = NodeLinks("10.243.200.0/29", bridge=BRIDGE)
    try:
        yield made
    finally:
        made.remove(NODES)


def test_nodes_reach_the_host_and_each_other_and_remove_leaves_nothing(links: NodeLinks) -> None:
    assert links.ensure_bridge() == "10.243.200.1"
    addresses = [links.ensure_node(name, i) for i, name in enumerate(NODES, start=1)]
    assert addresses == ["10.243.200.2", "10.243.200.3"]
    # idempotent: a second start finds everything in place
    assert links.ensure_bridge() == "10.243.200.1"
    assert links.ensure_node(NODES[0], 1) == "10.243.200.2"
    ns = netns_name(NODES[0])
    assert ip("netns", "exec", ns, "busybox", "ping", "-c1", "-W2", "10.243.200.1").returncode == 0
    assert ip("netns", "exec", ns, "busybox", "ping", "-c1", "-W2", "10.243.200.3").returncode == 0
    route = json.loads(ip("-n", ns, "-j", "route", "show", "default").stdout)
    assert route[0]["gateway"] == "10.243.200.1"
    forward = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"],
                             capture_output=True, text=True, check=False)
    assert forward.stdout.strip() == "1"
    # the link is a switch in a namespace of its own: its frames skip the host's netfilter
    assert links.switch in links.namespaces()
    kind = json.loads(ip("-j", "-d", "link", "show", "dev", BRIDGE).stdout)[0]["linkinfo"]["info_kind"]
    assert kind == "veth"
    if os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"):
        nf = subprocess.run(["ip", "netns", "exec", links.switch, "cat",
                             "/proc/sys/net/bridge/bridge-nf-call-iptables"], capture_output=True, text=True)
        assert nf.stdout.strip() == "0"
    links.remove(NODES)
    assert not ({netns_name(n) for n in NODES} | {links.switch}) & links.namespaces()
    assert ip("link", "show", "dev", BRIDGE).returncode != 0
    assert all(ip("link", "show", "dev", host_veth(n)).returncode != 0 for n in NODES)


def test_a_half_made_node_is_completed(links: NodeLinks) -> None:
    links.ensure_bridge()
    ip("netns", "add", netns_name(NODES[0]))  # an interrupted start: the namespace without its link
    assert links.ensure_node(NODES[0], 1) == "10.243.200.2"
    pinged = ip("netns", "exec", netns_name(NODES[0]), "busybox", "ping", "-c1", "-W2", "10.243.200.1")
    assert pinged.returncode == 0


def test_a_link_of_the_older_layout_is_replaced(links: NodeLinks) -> None:
    """Before the switch namespace the link was a bridge on the host with the nodes' veths on it: a
    restarted cluster converts it, keeping the node's namespace (its pods run there)."""
    ns = netns_name(NODES[0])
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("netns", "add", ns)
    ip("link", "add", host_veth(NODES[0]), "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("link", "set", host_veth(NODES[0]), "master", BRIDGE, "up")
    links.ensure_bridge()
    assert links.ensure_node(NODES[0], 1) == "10.243.200.2"
    assert ip("link", "show", "dev", host_veth(NODES[0])).returncode != 0
    assert ip("netns", "exec", ns, "busybox", "ping", "-c1", "-W2", "10.243.200.1").returncode == 0


def test_a_range_with_no_room_or_in_use_is_refused(links: NodeLinks) -> None:
    with pytest.raises(NetworkSetupError, match="no room"):
        links.node_address(6)
    with pytest.raises(NetworkSetupError, match="invalid node link range"):
        NodeLinks("10.243.200.1/29")
    ip("link", "add", "orchnlother", "type", "bridge")
    try:
        ip("addr", "add", "10.243.201.1/24", "dev", "orchnlother")
        ip("link", "set", "orchnlother", "up")
        with pytest.raises(NetworkSetupError, match=r"overlaps 10\.243\.201\.0/24"):
            NodeLinks("10.243.201.0/28", bridge="orchnltest2").ensure_bridge()
    finally:
        ip("link", "del", "orchnlother")
        ip("link", "del", "orchnltest2")
