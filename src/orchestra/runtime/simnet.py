"""Pod IPs of the simulated runtime: per-node pod CIDRs, handed out like CNI's host-local IPAM.

Owns: `PodNetworks`. A sandbox whose labels carry `label=value` for an assigned network gets its
IP from that network (`assign(label, value, cidr)`: a node's pod CIDR, selected by the node label);
any other sandbox gets one from the default network. Like host-local, the first address is the
gateway and is never handed out, nor are the network and broadcast addresses, and allocation goes
on after the last address handed out (so a freed IP is not reused at once). An address is never
given to two sandboxes, even where networks overlap. A full network raises NetworkFull.
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

DEFAULT_CIDR = "10.244.0.0/16"  # kube's usual cluster CIDR (kind, flannel); outside Podman's 10.88.0.0/16


class NetworkFull(Exception):
    """No free address is left in a sandbox's network."""


class _Pool:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.IPv4Network(cidr, strict=False)
        self.base = int(self.network.network_address)
        self.size = self.network.num_addresses
        self.first = 2 if self.size > 2 else 0  # skip the network address and the gateway (.1)
        self.last = self.size - 2 if self.size > 2 else self.size - 1  # and the broadcast address
        self.cursor = self.last  # the next search starts after this offset

    def allocate(self, used: Mapping[str, str]) -> str:
        span = self.last - self.first + 1
        for step in range(1, span + 1):
            offset = self.first + (self.cursor - self.first + step) % span
            ip = str(ipaddress.IPv4Address(self.base + offset))
            if ip not in used:
                self.cursor = offset
                return ip
        raise NetworkFull(f"no IP addresses available in range set: {self.network}")

    def contains(self, ip: str) -> bool:
        return ipaddress.IPv4Address(ip) in self.network


class PodNetworks:
    def __init__(self, default_cidr: str = DEFAULT_CIDR) -> None:
        self.default = _Pool(default_cidr)
        self._assigned: dict[tuple[str, str], _Pool] = {}  # (label, value) -> network
        self._used: dict[str, str] = {}  # ip -> sandbox id

    def assign(self, label: str, value: str, cidr: str) -> None:
        """Sandboxes labelled `label=value` get their IPs from `cidr` (a node's pod CIDR)."""
        old = self._assigned.get((label, value))
        if old is None or old.network != ipaddress.IPv4Network(cidr, strict=False):
            self._assigned[(label, value)] = _Pool(cidr)

    def cidr_of(self, labels: Mapping[str, str]) -> str:
        return str(self._pool(labels).network)

    def _pool(self, labels: Mapping[str, str]) -> _Pool:
        for item in labels.items():
            pool = self._assigned.get(item)
            if pool is not None:
                return pool
        return self.default

    def allocate(self, labels: Mapping[str, str], sandbox_id: str, *, prefer: str = "") -> str:
        """An address for the sandbox: `prefer` (its previous one) if still free and in its network."""
        pool = self._pool(labels)
        free = prefer and prefer not in self._used and pool.contains(prefer)
        ip = prefer if free else pool.allocate(self._used)
        self._used[ip] = sandbox_id
        return ip

    def claim(self, ip: str, sandbox_id: str) -> None:
        """Mark an address in use (state restored from disk)."""
        self._used[ip] = sandbox_id

    def release(self, ip: str, sandbox_id: str) -> None:
        if ip and self._used.get(ip) == sandbox_id:
            del self._used[ip]

    def in_use(self) -> int:
        return len(self._used)
