"""kube-controller-manager's node IPAM controller, range allocator (pkg/controller/nodeipam/ipam).

Owns: the cluster CIDR's per-node subnets (`CidrSet`: occupy, allocate, release) and the controller
that gives every Node without `spec.podCIDR` one of its own (`spec.podCIDR` and `spec.podCIDRs`, a
/24 of 10.244.0.0/16 by default), never one another Node holds; a deleted Node's CIDR is free again.
The allocations are not stored anywhere but the Nodes: after a restart the controller marks every
Node's podCIDR as taken before it gives out any (its first reconcile rebuilds the set from the
synced Node cache), so a CIDR is never given twice.
Like kube, it never changes a podCIDR a Node already has (one outside the cluster CIDR is left as is).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from orchestra.api.errors import NotFound
from orchestra.client.base import Client
from orchestra.controller import Controller, Result, TemporaryError, split_key
from orchestra.controller.events import WARNING
from orchestra.objects import Obj

log = logging.getLogger("orchestra.reconcilers.nodeipam")

DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
DEFAULT_NODE_MASK = 24


class CidrSetError(ValueError):
    """A cluster CIDR or node mask the allocator cannot use."""


class CidrSetFull(Exception):
    """Every node subnet of the cluster CIDR is taken."""


class CidrSet:
    """The cluster CIDR cut into /mask subnets, each free or taken (kube's cidrset)."""

    def __init__(self, cluster_cidr: str = DEFAULT_CLUSTER_CIDR, mask: int = DEFAULT_NODE_MASK) -> None:
        try:
            self.net = ipaddress.IPv4Network(cluster_cidr or DEFAULT_CLUSTER_CIDR, strict=True)
        except ValueError as exc:
            raise CidrSetError(f"invalid cluster CIDR {cluster_cidr!r}: {exc}") from None
        if not self.net.prefixlen <= mask <= 30:
            raise CidrSetError(f"node CIDR mask /{mask} must be between the cluster CIDR's "
                               f"/{self.net.prefixlen} and /30")
        self.mask = mask
        self.size = 2 ** (mask - self.net.prefixlen)
        self._step = 2 ** (32 - mask)
        self._taken: set[int] = set()
        self._next = 0  # kube's nextCandidate: a released CIDR is the last to be given again

    def _index(self, cidr: str) -> int | None:
        """The subnet index of `cidr` if it is exactly one of the set's subnets, else None."""
        try:
            sub = ipaddress.IPv4Network(cidr, strict=False)
        except ValueError:
            return None
        if sub.prefixlen != self.mask or not sub.subnet_of(self.net):
            return None
        return (int(sub.network_address) - int(self.net.network_address)) // self._step

    def _cidr(self, index: int) -> str:
        return f"{ipaddress.IPv4Address(int(self.net.network_address) + index * self._step)}/{self.mask}"

    def occupy(self, cidr: str) -> bool:
        """Mark `cidr` taken; False when it is not one of the set's subnets (nothing is marked)."""
        index = self._index(cidr)
        if index is None:
            return False
        self._taken.add(index)
        return True

    def allocate(self) -> str:
        """The next free subnet after the last one given, wrapping around; CidrSetFull if none."""
        for offset in range(self.size):
            index = (self._next + offset) % self.size
            if index not in self._taken:
                self._taken.add(index)
                self._next = (index + 1) % self.size
                return self._cidr(index)
        raise CidrSetFull(f"cluster CIDR {self.net} has no free /{self.mask} left")

    def release(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self._taken.discard(index)

    def taken(self) -> list[str]:
        return [self._cidr(i) for i in sorted(self._taken)]


def pod_cidr_of(node: Obj) -> str:
    spec = node.get("spec") or {}
    return str(spec.get("podCIDR") or next(iter(spec.get("podCIDRs") or []), "") or "")


class NodeIpamController(Controller):
    name = "node-ipam-controller"

    def __init__(self, client: Client, *, cluster_cidr: str = "", node_mask: int = DEFAULT_NODE_MASK,
                 **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)  # one worker: allocations are serial, as in kube
        self.cluster_cidr, self.node_mask = cluster_cidr or DEFAULT_CLUSTER_CIDR, node_mask
        self.cidrs = CidrSet(self.cluster_cidr, node_mask)
        self.nodes = self.informer("Node")
        self.enqueue_on(self.nodes)
        self._held: dict[str, str] = {}  # node name -> the CIDR it holds (released on delete)
        self._rebuilt = False

    def restarted(self) -> None:
        self.cidrs = CidrSet(self.cluster_cidr, self.node_mask)
        self._held.clear()
        self._rebuilt = False

    def _rebuild(self) -> None:
        """Every Node's podCIDR is taken before the first allocation (the cache is synced by now)."""
        for node in self.nodes.list():
            self._hold(node["metadata"]["name"], pod_cidr_of(node))
        self._rebuilt = True

    def _hold(self, name: str, cidr: str) -> None:
        if not cidr or self._held.get(name) == cidr:
            return
        if self._held.get(name):
            self.cidrs.release(self._held.pop(name))
        if self.cidrs.occupy(cidr):
            self._held[name] = cidr
        else:
            log.info("node %s: podCIDR %s is not a /%d of the cluster CIDR %s: left as it is",
                     name, cidr, self.node_mask, self.cidrs.net)

    async def reconcile(self, key: str) -> Result | None:
        if not self._rebuilt:
            self._rebuild()
        _, name = split_key(key)
        node = self.nodes.get(None, name)
        if node is None:
            held = self._held.pop(name, "")
            if held:
                self.cidrs.release(held)
                log.info("node %s deleted: podCIDR %s released", name, held)
            return None
        if pod_cidr_of(node):
            self._hold(name, pod_cidr_of(node))
            return None
        try:
            cidr = self.cidrs.allocate()
        except CidrSetFull as exc:
            self.recorder.event(node, WARNING, "CIDRNotAvailable",
                                f"Node {name} status is now: CIDRNotAvailable")
            raise TemporaryError(str(exc), delay=30.0) from None
        try:
            await self.client.patch(self.nodes.rt, None, name,
                                    {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except NotFound:
            self.cidrs.release(cidr)  # deleted meanwhile: its DELETED event has nothing to release
            return None
        except BaseException:
            self.cidrs.release(cidr)  # not written: the retry allocates again
            raise
        self._held[name] = cidr
        log.info("node %s: podCIDR %s", name, cidr)
        return None
