"""The node IPAM controller's range, planned for the nodes `orchestra up` runs. Pure functions.

Owns: choosing the cluster CIDR and the per-node mask (`plan`) and refusing a cluster CIDR that
overlaps a network in use (`check_overlap`). Giving each Node its podCIDR is the node IPAM
controller's job alone (reconcilers/nodeipam.py), for simulated, joined and the host's nodes.

Defaults: kube's usual cluster CIDR 10.244.0.0/16 and node mask /24 (254 pod IPs per node, kubelet
runs at most 110 pods) hold 256 nodes; for more nodes the cluster CIDR widens to 10.244.0.0/15 or
/14 (1,024 nodes), then the node mask to /25 (2,048 nodes). Podman's own network is 10.88.0.0/16
and the service range 10.96.0.0/16: neither overlaps.
Must not import: the client, the runtime, podman.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
DEFAULT_NODE_MASK = 24
MAX_NODE_MASK = 25  # 126 addresses: still more than kubelet's 110 pods
PODMAN_NETWORK = "10.88.0.0/16"  # Podman's default bridge: the host node's pods live there


class PodCIDRError(ValueError):
    """The cluster CIDR cannot serve the nodes (too small, overlapping, malformed)."""


def _network(cidr: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        raise PodCIDRError(f"invalid {what} {cidr!r}: {exc}") from None


def plan(nodes: int, cluster_cidr: str = "", mask: int = 0) -> tuple[str, int]:
    """(cluster CIDR, node mask) for `nodes` nodes; "" / 0 choose them (see the module docstring)."""
    if not cluster_cidr:
        for prefix in (16, 15, 14):
            if nodes <= 2 ** ((mask or DEFAULT_NODE_MASK) - prefix):
                return f"10.244.0.0/{prefix}", mask or DEFAULT_NODE_MASK
        cluster_cidr = "10.244.0.0/14"
    net = _network(cluster_cidr, "cluster CIDR")
    if mask and not net.prefixlen <= mask <= 30:
        raise PodCIDRError(
            f"node CIDR mask /{mask} must be between the cluster CIDR's /{net.prefixlen} and /30")
    chosen = mask or max(DEFAULT_NODE_MASK, net.prefixlen)
    while not mask and 2 ** (chosen - net.prefixlen) < nodes and chosen < MAX_NODE_MASK:
        chosen += 1
    if 2 ** (chosen - net.prefixlen) < nodes:
        raise PodCIDRError(
            f"cluster CIDR {net} holds {2 ** (chosen - net.prefixlen)} node CIDRs of /{chosen}, "
            f"too few for {nodes} nodes: give a larger one (e.g. 10.240.0.0/12)")
    return str(net), chosen


def check_overlap(cluster_cidr: str, in_use: Mapping[str, str]) -> None:
    """PodCIDRError if the cluster CIDR overlaps any network in `in_use` (description -> CIDR)."""
    net = _network(cluster_cidr, "cluster CIDR")
    for what, cidr in in_use.items():
        other = ipaddress.IPv4Network(cidr, strict=False)
        if net.overlaps(other):
            raise PodCIDRError(
                f"cluster CIDR {net} overlaps {what} {other}: choose another (e.g. 10.244.0.0/16)")
