"""The node IPAM range planned for simulated nodes (node/podcidr.py) and pod IPs (runtime/simnet.py)."""

from __future__ import annotations

import re

import pytest

from orchestra.node.podcidr import PODMAN_NETWORK, PodCIDRError, check_overlap, plan
from orchestra.runtime.simnet import NetworkFull, PodNetworks


@pytest.mark.parametrize(("nodes", "given", "mask", "expected"), [
    pytest.param(3, "", 0, ("10.244.0.0/16", 24), id="default"),
    pytest.param(256, "", 0, ("10.244.0.0/16", 24), id="256-fit-a-16"),
    pytest.param(257, "", 0, ("10.244.0.0/15", 24), id="wider-cluster-cidr"),
    pytest.param(1000, "", 0, ("10.244.0.0/14", 24), id="1000-nodes"),
    pytest.param(2000, "", 0, ("10.244.0.0/14", 25), id="then-smaller-node-cidrs"),
    pytest.param(3, "10.200.0.0/16", 0, ("10.200.0.0/16", 24), id="given"),
    pytest.param(300, "10.200.0.0/16", 0, ("10.200.0.0/16", 25), id="given-too-small-for-24s"),
    pytest.param(3, "10.200.0.0/16", 26, ("10.200.0.0/16", 26), id="given-mask"),
])
def test_plan(nodes: int, given: str, mask: int, expected: tuple[str, int]) -> None:
    assert plan(nodes, given, mask) == expected


@pytest.mark.parametrize(("nodes", "given", "message"), [
    pytest.param(5000, "", "too few for 5000 nodes", id="too-many-nodes"),
    pytest.param(3, "10.200.0.1/16", "invalid cluster CIDR '10.200.0.1/16'", id="host-bits-set"),
    pytest.param(3, "nonsense", "invalid cluster CIDR", id="malformed"),
])
def test_plan_errors(nodes: int, given: str, message: str) -> None:
    with pytest.raises(PodCIDRError, match=message):
        plan(nodes, given)


def test_overlaps_are_refused() -> None:
    in_use = {"the service CIDR": "10.96.0.0/16", "Podman's network": PODMAN_NETWORK}
    check_overlap("10.244.0.0/16", in_use)
    with pytest.raises(PodCIDRError, match=re.escape("overlaps Podman's network 10.88.0.0/16")):
        check_overlap("10.88.0.0/14", in_use)
    with pytest.raises(PodCIDRError, match="overlaps the service CIDR"):
        check_overlap("10.96.0.0/12", in_use)


def test_pod_ips_come_from_the_sandbox_network_like_host_local() -> None:
    nets = PodNetworks("10.244.0.0/16")
    nets.assign("node", "n1", "10.244.1.0/29")  # .2 to .6: .0 is the network, .1 the gateway, .7 broadcast
    got = [nets.allocate({"node": "n1"}, f"s{i}") for i in range(5)]
    assert got == [f"10.244.1.{i}" for i in range(2, 7)]
    with pytest.raises(NetworkFull, match=re.escape("no IP addresses available in range set: 10.244.1.0/29")):
        nets.allocate({"node": "n1"}, "s5")
    nets.release("10.244.1.3", "s1")
    assert nets.allocate({"node": "n1"}, "s5") == "10.244.1.3"
    nets.release("10.244.1.5", "s3")
    assert nets.allocate({"node": "n1"}, "s3", prefer="10.244.1.5") == "10.244.1.5"  # its old address back
    assert nets.allocate({"node": "elsewhere"}, "d") == "10.244.0.2"  # the default network
    nets.claim("10.244.0.3", "e")  # restored from disk: never handed out again
    assert nets.allocate({}, "f") == "10.244.0.4"
    assert nets.in_use() == 8
