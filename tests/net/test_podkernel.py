"""The pod-route kernel adapter (net/podkernel.py) against the real iproute2 and iptables, in a network
namespace this test makes (`orpa-k<pid>`): what it reads back is what it wrote, `add` never takes over
a route that is there, the VXLAN device is made again when its settings differ, and the firewall
chains are rewritten whole and removed without a trace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import attrs
import pytest
import trio

from orchestra.net.podkernel import (
    COMMENT,
    FdbEntry,
    Firewall,
    Neighbour,
    Path,
    Route,
    RouteKernel,
    RouteKernelError,
    Vtep,
)

IP = shutil.which("ip") or "/usr/sbin/ip"
NS = f"orpa-k{os.getpid()}"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def sh(*args: str) -> str:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 0, f"{' '.join(args)}: {res.stderr}"
    return res.stdout


@pytest.fixture
def kernel() -> Iterator[RouteKernel]:
    subprocess.run([IP, "netns", "del", NS], capture_output=True, check=False)
    if subprocess.run([IP, "netns", "add", NS], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot make a network namespace")
    try:
        sh(IP, "-n", NS, "link", "add", "orpa-a", "type", "veth", "peer", "name", "orpa-b")
        for dev in ("lo", "orpa-a", "orpa-b"):
            sh(IP, "-n", NS, "link", "set", dev, "up")
        sh(IP, "-n", NS, "addr", "add", "10.231.0.1/24", "dev", "orpa-a")
        sh(IP, "-n", NS, "route", "add", "10.231.99.0/24", "dev", "orpa-b")  # somebody else's route
        yield RouteKernel(netns=NS)
    finally:
        subprocess.run([IP, "netns", "del", NS], capture_output=True, check=False)


async def test_paths_and_routes(kernel: RouteKernel) -> None:
    with trio.fail_after(20):
        assert await kernel.path_to("10.231.0.1") == Path("local", "lo", "10.231.0.1")
        assert await kernel.path_to("10.231.0.7") == Path("link", "orpa-a", "10.231.0.1")
        mine = Route("10.231.5.0/24", "10.231.0.5", "orpa-a")
        await kernel.set_route(mine, replace=False)
        assert await kernel.path_to("10.231.5.9") == Path("gateway", "orpa-a", "10.231.0.1")
        assert await kernel.routes() == {mine}
        moved = Route("10.231.5.0/24", "10.231.0.6", "orpa-a")
        with pytest.raises(RouteKernelError, match=re.escape("route add 10.231.5.0/24")):
            await kernel.set_route(moved, replace=False)
        await kernel.set_route(moved, replace=True)
        assert await kernel.routes() == {moved}
        with pytest.raises(RouteKernelError, match="File exists"):  # never over another's route
            await kernel.set_route(Route("10.231.99.0/24", "10.231.0.5", "orpa-a"), replace=False)
        await kernel.delete_route(moved)
        assert await kernel.routes() == set()
        assert "10.231.99.0/24" in sh(IP, "-n", NS, "-j", "route", "show")


async def test_the_vxlan_device_and_its_entries(kernel: RouteKernel) -> None:
    vtep = Vtep("orpavx0", "0a:01:02:03:04:05", "10.231.1.0", 1, 8472, 1450)
    with trio.fail_after(20):
        await kernel.ensure_vtep(vtep)
        first = await kernel.link("orpavx0")
        assert first is not None and "UP" in first["flags"] and first["mtu"] == 1450
        await kernel.ensure_vtep(vtep)  # as it should be: left alone
        again = await kernel.link("orpavx0")
        assert again is not None and again["ifindex"] == first["ifindex"]
        other = Vtep("orpavx0", "0a:01:02:03:04:06", "10.231.1.0", 1, 8472, 1450)
        await kernel.ensure_vtep(other)  # another MAC: made again
        remade = await kernel.link("orpavx0")
        assert remade is not None and remade["address"] == other.mac

        route = Route("10.231.7.0/24", "10.231.7.0", "orpavx0", onlink=True)
        await kernel.set_route(route, replace=False)
        assert await kernel.routes() == {route}
        n = Neighbour("10.231.7.0", "0a:00:00:00:00:07")
        await kernel.set_neighbour("orpavx0", n)
        await kernel.set_neighbour("orpavx0", Neighbour("10.231.7.0", "0a:00:00:00:00:08"))  # same key
        assert await kernel.neighbours("orpavx0") == {Neighbour("10.231.7.0", "0a:00:00:00:00:08")}
        await kernel.set_fdb("orpavx0", FdbEntry(n.mac, "10.231.0.7"))
        await kernel.set_fdb("orpavx0", FdbEntry(n.mac, "10.231.0.8"))
        assert await kernel.fdb("orpavx0") == {FdbEntry(n.mac, "10.231.0.8")}
        await kernel.delete_fdb("orpavx0", FdbEntry(n.mac, "10.231.0.8"))
        await kernel.delete_neighbour("orpavx0", Neighbour("10.231.7.0", "0a:00:00:00:00:08"))
        assert await kernel.fdb("orpavx0") == set() and await kernel.neighbours("orpavx0") == set()
        await kernel.delete_route(route)
        await kernel.delete_link("orpavx0")
        await kernel.delete_link("orpavx0")  # gone: nothing to do
        assert await kernel.link("orpavx0") is None


async def test_forwarding_and_the_firewall(kernel: RouteKernel) -> None:
    with trio.fail_after(20):
        sh(IP, "netns", "exec", NS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
        await kernel.ensure_forwarding()
        assert sh(IP, "netns", "exec", NS, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
        fw = Firewall("ORCH-PODNET-TEST", nat=(("10.231.1.0/24", "10.231.2.0/24"),),
                      forward=(("10.231.2.0/24", "10.231.1.0/24"), ("10.231.1.0/24", "10.231.2.0/24")))
        await kernel.set_firewall(fw)
        await kernel.set_firewall(attrs.evolve(fw, nat=(("10.231.1.0/24", "10.231.3.0/24"),)))
        saved = sh(IP, "netns", "exec", NS, "iptables-save")
        assert "-d 10.231.3.0/24" in saved and "-d 10.231.2.0/24 -m comment" not in saved.split("*filter")[0]
        assert saved.count(f"-j {fw.chain}") == 2  # one jump per hook, however often it is set
        assert f"-A POSTROUTING -m comment --comment {COMMENT} -j {fw.chain}" in saved
        assert f"-A FORWARD -m comment --comment {COMMENT} -j {fw.chain}" in saved
        await kernel.remove_firewall(fw.chain)
        await kernel.remove_firewall(fw.chain)  # gone: nothing to do
        assert COMMENT not in sh(IP, "netns", "exec", NS, "iptables-save")
        assert fw.chain not in sh(IP, "netns", "exec", NS, "iptables-save")

