"""Worker nodes on this host, each a Linux network namespace of its own on one shared link.

Owns: the kernel plumbing `orchestra up --nodes N` gives its worker nodes (kind's nodes are
containers; ours are network namespaces): the link is a bridge (`sw0`) inside a namespace of its own
(`orchnodes`: a switch), so the frames between nodes never pass the host's netfilter (with
br_netfilter loaded, every frame a host bridge forwards goes through the host's conntrack and
iptables; in the switch's namespace bridge-nf-call-* are off). The host is on the link as any node is:
a veth pair whose host end `orchnodes` holds the first address of the link range (10.243.0.1/24 by
default). Per worker a namespace `orchestra-<node>` with a veth pair whose inner end is `eth0`
(10.243.0.<n+1>), `lo` up, a default route via the host and IPv4 forwarding on. Every step is
idempotent, so a restarted cluster finds its nodes where it left them (their pods keep running inside
them, `up`'s adoption; a link of the older layout, a bridge on the host, is replaced); `remove()`
deletes the namespaces and the link. Pods' routes between the nodes are net/podroutes.py's.
All through iproute2 (`ip -j` where something is read: JSON, never human-readable output).
Must not import: apiserver, app, cli, reconcilers, node, runtime, the store.

    links = NodeLinks()                       # 10.243.0.0/24, bridge orchnodes
    links.ensure_bridge()                     # before the API server listens on links.host_address
    address = links.ensure_node("worker-1", 1)
    ...  # `nsenter --net=/run/netns/orchestra-worker-1 orchestra join https://10.243.0.1:6443 ...`
    links.remove(["worker-1"])
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import shutil
import subprocess
from pathlib import Path

import attrs

from orchestra.net.routes import NetworkSetupError

log = logging.getLogger("orchestra.net.nodelinks")

DEFAULT_LINK_CIDR = "10.243.0.0/24"
BRIDGE = "orchnodes"
NETNS_PREFIX = "orchestra-"
NETNS_DIR = Path("/run/netns")  # where `ip netns add` keeps the namespaces (for `nsenter --net=`)


def _ip_binary() -> str:
    return shutil.which("ip") or "/usr/sbin/ip"


def netns_name(node: str) -> str:
    return NETNS_PREFIX + node


def host_veth(node: str) -> str:
    """The switch's end of a node's veth pair (interface names have at most 15 characters)."""
    return "orn" + hashlib.sha256(node.encode()).hexdigest()[:10]


SWITCH_BRIDGE = "sw0"  # the bridge inside the switch's namespace
SWITCH_HOST_PORT = "host"  # the switch's end of the host's veth pair
# frames the switch forwards skip netfilter (these keys exist only while br_netfilter is loaded)
SWITCH_SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables",
                  "net.bridge.bridge-nf-call-arptables")


@attrs.define
class NodeLinks:
    cidr: str = DEFAULT_LINK_CIDR
    bridge: str = BRIDGE
    _network: ipaddress.IPv4Network = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        try:
            self._network = ipaddress.IPv4Network(self.cidr, strict=True)
        except ValueError as exc:
            raise NetworkSetupError(f"invalid node link range {self.cidr!r}: {exc}") from None
        if self._network.num_addresses < 4:
            raise NetworkSetupError(f"node link range {self.cidr} is too small: give a /29 or wider")

    @property
    def host_address(self) -> str:
        return str(self._network[1])

    def node_address(self, index: int) -> str:
        """Worker `index` (1, 2, ...) gets the link's address index + 1."""
        if not 1 <= index < self._network.num_addresses - 2:
            raise NetworkSetupError(f"node link range {self.cidr} has no room for {index} worker nodes")
        return str(self._network[index + 1])

    def _ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([_ip_binary(), *args], capture_output=True, text=True, timeout=15, check=False)
        if check and res.returncode != 0:
            raise NetworkSetupError(f"`ip {' '.join(args)}` failed: {res.stderr.strip() or res.returncode}")
        return res

    def _exists(self, link: str, netns: str | None = None) -> bool:
        where = ("-n", netns) if netns else ()
        return self._ip(*where, "link", "show", "dev", link, check=False).returncode == 0

    def namespaces(self) -> set[str]:
        out = self._ip("-j", "netns", "list", check=False).stdout.strip()
        try:
            return {entry["name"] for entry in json.loads(out or "[]")}
        except (ValueError, KeyError, TypeError):
            return set()

    @property
    def switch(self) -> str:
        """The switch's namespace (named as the host's end of the link)."""
        return self.bridge

    def ensure_bridge(self) -> str:
        """The link (created where missing): the switch and the host's veth pair into it; returns the
        host's address on it."""
        self._check_overlap()
        if self._kind(self.bridge) == "bridge":  # the older layout: the link was a bridge on the host
            self._ip("link", "del", self.bridge, check=False)
        if self.switch not in self.namespaces():
            self._ip("netns", "add", self.switch)
        sw = ("-n", self.switch)
        if not self._exists(SWITCH_BRIDGE, self.switch):
            self._ip(*sw, "link", "add", SWITCH_BRIDGE, "type", "bridge")
        for key in SWITCH_SYSCTLS:
            _sysctl(self.switch, key, "0", missing_ok=True)
        self._ip(*sw, "link", "set", "lo", "up")
        self._ip(*sw, "link", "set", SWITCH_BRIDGE, "up")
        if not self._exists(self.bridge) or not self._exists(SWITCH_HOST_PORT, self.switch):
            self._ip("link", "del", self.bridge, check=False)
            self._ip(*sw, "link", "del", SWITCH_HOST_PORT, check=False)
            self._ip("link", "add", self.bridge, "type", "veth", "peer", "name", SWITCH_HOST_PORT,
                     "netns", self.switch)
        self._ip(*sw, "link", "set", SWITCH_HOST_PORT, "master", SWITCH_BRIDGE, "up")
        prefix = self._network.prefixlen
        self._ip("addr", "replace", f"{self.host_address}/{prefix}", "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")
        _sysctl(None, "net.ipv4.ip_forward", "1")
        return self.host_address

    def _kind(self, link: str, netns: str | None = None) -> str | None:
        """The link's kind ("bridge", "veth", ...), None when there is no such link."""
        where = ("-n", netns) if netns else ()
        res = self._ip(*where, "-j", "-d", "link", "show", "dev", link, check=False)
        if res.returncode != 0:
            return None
        try:
            return str(json.loads(res.stdout)[0].get("linkinfo", {}).get("info_kind", ""))
        except (ValueError, IndexError, AttributeError):
            return ""

    def _check_overlap(self) -> None:
        """Refuse a link range that a route of this host (other than our bridge's) already covers."""
        out = self._ip("-j", "-4", "route", "show", "table", "main", check=False).stdout.strip()
        try:
            routes = json.loads(out or "[]")
        except ValueError:
            return
        for route in routes:
            dst, dev = route.get("dst", ""), route.get("dev", "")
            if dst in ("", "default") or dev == self.bridge:
                continue
            try:
                other = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
            except ValueError:
                continue
            if other.overlaps(self._network):
                raise NetworkSetupError(
                    f"the node link range {self.cidr} overlaps {dst} (dev {dev}) on this host: choose "
                    "another with --node-link-cidr")

    def ensure_node(self, node: str, index: int) -> str:
        """Node `node`'s namespace, veth pair, address and default route (created where missing);
        returns its address on the link."""
        ns, outer, address = netns_name(node), host_veth(node), self.node_address(index)
        if ns not in self.namespaces():
            self._ip("netns", "add", ns)
        if self._exists(outer):  # the older layout: the node's end of the link was on the host
            self._ip("link", "del", outer, check=False)
        sw = ("-n", self.switch)
        if not self._exists("eth0", ns) or not self._exists(outer, self.switch):
            # half made by an interrupted start: one end went with a namespace
            self._ip(*sw, "link", "del", outer, check=False)
            self._ip("-n", ns, "link", "del", "eth0", check=False)
            self._ip(*sw, "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._ip(*sw, "link", "set", outer, "master", SWITCH_BRIDGE, "up")
        self._ip("-n", ns, "addr", "replace", f"{address}/{self._network.prefixlen}", "dev", "eth0")
        self._ip("-n", ns, "link", "set", "lo", "up")
        self._ip("-n", ns, "link", "set", "eth0", "up")
        self._ip("-n", ns, "route", "replace", "default", "via", self.host_address, "dev", "eth0")
        _sysctl(ns, "net.ipv4.ip_forward", "1")
        return address

    def remove(self, nodes: list[str]) -> None:
        """Delete the nodes' namespaces and the switch's (the veth pairs go with them) and the host's end
        of the link; best effort."""
        present = self.namespaces()
        for node in nodes:
            if netns_name(node) in present:
                res = self._ip("netns", "del", netns_name(node), check=False)
                if res.returncode != 0:
                    log.warning("could not delete network namespace %s: %s", netns_name(node),
                                res.stderr.strip())
            if self._exists(host_veth(node)):  # the older layout's
                self._ip("link", "del", host_veth(node), check=False)
        if self.switch in present:
            res = self._ip("netns", "del", self.switch, check=False)
            if res.returncode != 0:
                log.warning("could not delete network namespace %s: %s", self.switch, res.stderr.strip())
        if self._exists(self.bridge):
            self._ip("link", "del", self.bridge, check=False)


def _sysctl(netns: str | None, key: str, value: str, *, missing_ok: bool = False) -> None:
    if missing_ok and not (Path("/proc/sys") / key.replace(".", "/")).exists():
        return
    prefix = [_ip_binary(), "netns", "exec", netns] if netns else []
    sysctl = shutil.which("sysctl") or "/usr/sbin/sysctl"
    res = subprocess.run([*prefix, sysctl, "-qw", f"{key}={value}"], capture_output=True, text=True,
                         timeout=15, check=False)
    if res.returncode != 0:
        raise NetworkSetupError(f"could not set {key}={value}{f' in {netns}' if netns else ''}: "
                                f"{res.stderr.strip()}")
