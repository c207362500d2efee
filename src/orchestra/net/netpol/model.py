"""The values NetworkPolicy enforcement works with, between the API objects and the nft ruleset.

Owns: `Endpoint` (a pod as policies see it: namespace, labels, IPv4 address, node, named ports),
`PortMatch` (a protocol and a port range, or every port of it), `Allow` (one way traffic may pass:
from or to some peers on some ports) and `PodRules` (a local pod's isolation: its ingress and
egress allows, or None where it is not isolated). Addresses are IPv4 (Podman's pod network);
`Peers` are sorted, disjoint, inclusive intervals of IPv4 addresses as integers.
Must not import: the rest of net, the client, the controller runtime (values only).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import attrs

from orchestra.objects import Obj, as_dict, as_dicts

Interval = tuple[int, int]
Peers = tuple[Interval, ...]
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
TERMINAL_PHASES = ("Succeeded", "Failed")  # their address may already belong to another pod


@attrs.frozen
class NamedPort:
    name: str
    protocol: str  # TCP | UDP | SCTP, as in the pod spec
    number: int


@attrs.frozen
class Endpoint:
    """A pod with an address, as NetworkPolicy selects it (or a cluster component standing in for
    pods, like the cluster DNS)."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str
    node: str = ""
    ports: tuple[NamedPort, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def address(self) -> int:
        return int(ipaddress.IPv4Address(self.ip))

    def port_named(self, name: str, protocol: str) -> int | None:
        """The container port a NetworkPolicy port name means on this pod (kube resolves it per pod)."""
        for port in self.ports:
            if port.name == name and port.protocol == protocol:
                return port.number
        return None

    @classmethod
    def from_pod(cls, pod: Obj) -> Endpoint | None:
        """None for a pod policies cannot see: no IPv4 address yet, on the host's network (its
        address is the node's), or finished (its address may be reused)."""
        meta, spec = as_dict(pod.get("metadata")), as_dict(pod.get("spec"))
        status = as_dict(pod.get("status"))
        ip = status.get("podIP")
        if not isinstance(ip, str) or spec.get("hostNetwork") or status.get("phase") in TERMINAL_PHASES:
            return None
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            return None  # IPv6 pods are not policed (Podman's pod network is IPv4)
        return cls(str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                   dict(as_dict(meta.get("labels"))), ip, str(spec.get("nodeName") or ""), _named_ports(spec))


def _named_ports(spec: Obj) -> tuple[NamedPort, ...]:
    out = []
    for container in [*as_dicts(spec.get("initContainers")), *as_dicts(spec.get("containers"))]:
        for port in as_dicts(container.get("ports")):
            number: Any = port.get("containerPort")
            if port.get("name") and isinstance(number, int):
                out.append(NamedPort(str(port["name"]), str(port.get("protocol") or "TCP"), number))
    return tuple(out)


@attrs.frozen
class PortMatch:
    protocol: str  # tcp | udp | sctp (nft's names)
    first: int | None = None  # None: every port of the protocol
    last: int | None = None


@attrs.frozen
class Allow:
    """Traffic from (ingress) or to (egress) `peers` (None: any address) on `port` (None: any
    protocol and port) passes. `origin` names the policy rule, for the ruleset's comments."""

    peers: Peers | None
    port: PortMatch | None
    origin: str


@attrs.frozen
class PodRules:
    """A pod on this node and what may reach it / what it may reach; None: not isolated that way."""

    endpoint: Endpoint
    ingress: tuple[Allow, ...] | None
    egress: tuple[Allow, ...] | None
