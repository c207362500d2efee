"""What a node publishes of its pod networks and what the others make of it: Node -> Peer, and a
Peer plus the way to its address -> the routes, neighbour and forwarding entries that reach it.
Pure functions and values, no I/O (podroutes.py runs them, podkernel.py applies the result).

Annotations a node writes on its own Node (NodeRestriction lets a node change its annotations):
  * `orchestra.io/pod-networks`  "CIDR[,CIDR]": the IPv4 networks its pods live on. Only Nodes that
                                 publish it are routed (simulated nodes never do).
  * `orchestra.io/vtep-mac`      the MAC of its VXLAN device (flannel's `VtepMAC` of its
                                 backend-data), which peers put in their neighbour table.
The VXLAN scheme is flannel's `vxlan` backend: VNI 1 on UDP 8472 (flannel's port, the Linux default;
the IANA port 4789 is left to other overlays), device MTU 1450 (1500 less the 50 bytes of
encapsulation), no learning and no multicast. Each node's VTEP address is the network address of
its first pod network (10.244.1.0 for 10.244.1.0/24, as flannel's `flannel.1`), a peer's networks
are routed `via <its VTEP address> dev <device> onlink`, with a permanent neighbour entry (VTEP
address -> its MAC) and a permanent forwarding entry (its MAC -> its InternalIP). Chosen over
flood-and-learn because every entry is known from the API: nothing is flooded to every node, no
entry ages out, and a peer that goes away leaves nothing to learn wrong.
The VTEP MAC is derived from the node's InternalIP (locally administered, 0a:...), so two nodes of
one host (a joined node beside the server) agree on the one device they share.
Must not import: the rest of net, the API, the store.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

import attrs

from orchestra.net.podkernel import FdbEntry, Neighbour, Path, Route
from orchestra.objects import Obj, as_dict

NETWORKS_ANNOTATION = "orchestra.io/pod-networks"
VTEP_MAC_ANNOTATION = "orchestra.io/vtep-mac"
VXLAN_DEVICE = "orchvx0"
VNI = 1
VXLAN_PORT = 8472
VXLAN_MTU = 1450
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class MalformedNode(ValueError):
    """A Node whose published networks or address cannot be routed; the message says why."""


class NotAddressedYet(MalformedNode):
    """A Node that publishes its networks before its agent has posted its InternalIP (a new node's
    first second): routed at its next update, not worth a warning."""


@attrs.frozen
class Peer:
    name: str
    address: str  # its InternalIP
    networks: tuple[str, ...]
    vtep_mac: str | None = None


@attrs.frozen
class Plan:
    """What reaching one peer takes: mode `local` (its networks are on this host), `host-gw` or
    `vxlan`."""

    mode: str
    routes: tuple[Route, ...] = ()
    neighbour: Neighbour | None = None
    fdb: FdbEntry | None = None


def parse_networks(text: str) -> tuple[str, ...]:
    nets = []
    for part in text.split(","):
        try:
            nets.append(ipaddress.IPv4Network(part.strip(), strict=True))
        except ValueError as exc:
            raise MalformedNode(f"{NETWORKS_ANNOTATION} {text!r}: {exc}") from None
    return tuple(str(n) for n in nets)


def internal_ip(node: Obj) -> str | None:
    """The first InternalIP of the Node's status; MalformedNode when it is not an IPv4 address."""
    for entry in as_dict(node.get("status")).get("addresses") or []:
        if isinstance(entry, dict) and entry.get("type") == "InternalIP":
            address = str(entry.get("address"))
            try:
                return str(ipaddress.IPv4Address(address))
            except ValueError:
                raise MalformedNode(f"InternalIP {address!r} is not an IPv4 address") from None
    return None


def peer_from_node(node: Obj) -> Peer | None:
    """The Node as a peer; None when it publishes no pod networks (not routed)."""
    meta = as_dict(node.get("metadata"))
    annotations = as_dict(meta.get("annotations"))
    text = annotations.get(NETWORKS_ANNOTATION)
    if text is None:
        return None
    networks = parse_networks(str(text))
    address = internal_ip(node)
    if address is None:
        raise NotAddressedYet("it publishes pod networks but has no InternalIP yet")
    mac = annotations.get(VTEP_MAC_ANNOTATION)
    if mac is not None and not _MAC.match(str(mac)):
        raise MalformedNode(f"{VTEP_MAC_ANNOTATION} {mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return Peer(str(meta.get("name")), address, networks, str(mac) if mac is not None else None)


def overlapping(networks: tuple[str, ...], taken: list[str]) -> str | None:
    """The first of `taken` one of `networks` overlaps, if any."""
    for net in networks:
        for other in taken:
            if ipaddress.IPv4Network(net).overlaps(ipaddress.IPv4Network(other)):
                return other
    return None


def vtep_mac(address: str) -> str:
    """The VXLAN device's MAC of the host with this address: locally administered, unicast."""
    digest = hashlib.sha256(address.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0A, *digest[:5]))


def vtep_address(networks: tuple[str, ...]) -> str:
    return str(ipaddress.IPv4Network(networks[0]).network_address)


def published(own_networks: tuple[str, ...], address: str | None) -> dict[str, str | None]:
    """The annotations this node's Node should carry (None: remove it)."""
    if not own_networks:
        return {}
    return {NETWORKS_ANNOTATION: ",".join(own_networks),
            VTEP_MAC_ANNOTATION: vtep_mac(address) if address else None}


def plan(peer: Peer, path: Path, device: str, own_address: str | None) -> Plan:
    """How to reach `peer` given the way to its address and this node's InternalIP; MalformedNode
    when it needs VXLAN and publishes no VTEP MAC.
    host-gw needs the peer's address on a shared link AND this node's InternalIP as the source on
    that link, so that the peer, asking the same of its side, decides the same: a node whose
    InternalIP is elsewhere (the host of `orchestra up --nodes`, whose workers sit on a bridge
    behind it) sees a worker on a link while the worker sees it behind a router; both use VXLAN."""
    if path.kind == "local":
        return Plan("local")
    if path.kind == "link" and own_address is not None and path.source == own_address:
        return Plan("host-gw", tuple(Route(net, peer.address, path.dev) for net in peer.networks))
    if peer.vtep_mac is None:
        raise MalformedNode(f"it is reached over VXLAN ({peer.address} is behind a router, or this node's "
                            f"InternalIP is not on the link to it) but publishes no {VTEP_MAC_ANNOTATION}")
    gateway = vtep_address(peer.networks)
    return Plan("vxlan", tuple(Route(net, gateway, device, onlink=True) for net in peer.networks),
                Neighbour(gateway, peer.vtep_mac), FdbEntry(peer.vtep_mac, peer.address))
