"""The bridge MAC pinning (runtime/bridge.py) on a real Linux bridge with veth ports (needs root,
like every networking test; CI runs as root)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.runtime.bridge import mac_pinned, pin_mac

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a bridge needs root (CAP_NET_ADMIN)")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def mac(iface: str) -> str:
    return Path(f"/sys/class/net/{iface}/address").read_text().strip()


@pytest.fixture
def bridge() -> Iterator[tuple[str, list[str]]]:
    tag = uuid.uuid4().hex[:6]
    br, ports = f"obr{tag}", [f"ov{tag}{i}" for i in range(3)]
    ip("link", "add", br, "type", "bridge")
    try:
        yield br, ports
    finally:
        for p in ports:
            subprocess.run(["ip", "link", "del", p], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", br], capture_output=True, check=False)


def add_port(br: str, port: str, address: str) -> None:
    ip("link", "add", port, "address", address, "type", "veth", "peer", "name", port + "p")
    ip("link", "set", port, "master", br)


def test_an_unpinned_bridge_follows_its_lowest_port(bridge: tuple[str, list[str]]) -> None:
    """The kernel behaviour pinning exists for: the address moves when the lowest port leaves."""
    br, (a, b, _c) = bridge
    add_port(br, a, "02:00:00:00:00:05")
    add_port(br, b, "02:00:00:00:00:02")
    assert mac(br) == "02:00:00:00:00:02" and mac_pinned(br) is False
    ip("link", "del", b)
    assert mac(br) == "02:00:00:00:00:05"


def test_a_pinned_bridge_keeps_its_address(bridge: tuple[str, list[str]]) -> None:
    br, (a, b, c) = bridge
    add_port(br, a, "02:00:00:00:00:05")
    add_port(br, b, "02:00:00:00:00:02")
    assert pin_mac(br) is True
    assert mac_pinned(br) is True and mac(br) == "02:00:00:00:00:02"  # the address it had: no ARP change
    assert pin_mac(br) is False  # once is enough
    ip("link", "del", b)  # the port the address came from leaves
    assert mac(br) == "02:00:00:00:00:02"
    add_port(br, c, "02:00:00:00:00:01")  # a lower one arrives
    assert mac(br) == "02:00:00:00:00:02"


def test_missing_interface_is_left_alone() -> None:
    assert mac_pinned("no-such-if0") is None
    assert pin_mac("no-such-if0") is False


def test_a_bridge_of_another_network_namespace_is_pinned_through_the_kernel() -> None:
    """A worker node entered with `nsenter --net` sees the host's sysfs: the bridge is not listed there,
    and the MAC is read and set with ioctls in the node's own namespace."""
    ns = f"obrns{uuid.uuid4().hex[:6]}"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "add", "br0", "type", "bridge")
        ip("-n", ns, "link", "add", "p0", "address", "02:00:00:00:00:05", "type", "veth", "peer", "name",
           "p0p")
        ip("-n", ns, "link", "set", "p0", "master", "br0")

        def in_ns(*cmd: str) -> str:
            return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True,
                                  text=True).stdout.strip()
        assert in_ns("cat", "/sys/class/net/br0/addr_assign_type") != "3"
        done = subprocess.run(
            ["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c",
             "from orchestra.runtime.bridge import pin_mac; print(pin_mac('br0'), pin_mac('nope0'))"],
            check=True, capture_output=True, text=True)
        assert done.stdout.split() == ["True", "False"]
        assert in_ns("cat", "/sys/class/net/br0/addr_assign_type") == "3"
        assert in_ns("cat", "/sys/class/net/br0/address") == "02:00:00:00:00:05"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
