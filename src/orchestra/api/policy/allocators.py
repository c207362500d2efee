"""Service ClusterIP and NodePort allocation (the apiserver's service REST allocators).

Owns: choosing free IPs in the service CIDR and free node ports, from the Services that exist.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from typing import Any

from orchestra.api.errors import Cause, invalid
from orchestra.objects import name_of

DEFAULT_SERVICE_CIDR = "10.96.0.0/16"
NODE_PORT_RANGE = (30000, 32767)


class ServiceAllocator:
    """Allocates from the state of existing Services (passed in), so it has no state of its own."""

    def __init__(
        self, cidr: str = DEFAULT_SERVICE_CIDR, node_ports: tuple[int, int] = NODE_PORT_RANGE
    ) -> None:
        self.network = ipaddress.ip_network(cidr)
        self.node_ports = node_ports
        self._rand = random.Random()

    @property
    def kubernetes_ip(self) -> str:
        """The first address: the `kubernetes` Service in `default`."""
        return str(self.network.network_address + 1)

    @property
    def dns_ip(self) -> str:
        """The tenth address: cluster DNS, like kubeadm's 10.96.0.10."""
        return str(self.network.network_address + 10)

    def allocate(self, svc: dict[str, Any], existing: Iterable[dict[str, Any]]) -> None:
        """Fill spec.clusterIP(s) and nodePorts of a new Service in place; 422 when a request clashes."""
        spec = svc.setdefault("spec", {})
        used_ips: set[str] = set()
        used_ports: set[int] = set()
        for other in existing:
            ospec = other.get("spec") or {}
            if ospec.get("clusterIP") and ospec["clusterIP"] != "None":
                used_ips.add(ospec["clusterIP"])
            for p in ospec.get("ports") or []:
                if p.get("nodePort"):
                    used_ports.add(int(p["nodePort"]))
        name = name_of(svc)
        stype = spec.get("type", "ClusterIP")
        if stype != "ExternalName":
            self._cluster_ip(spec, used_ips, name)
        if stype in ("NodePort", "LoadBalancer"):
            for i, port in enumerate(spec.get("ports") or []):
                self._node_port(port, used_ports, name, i)

    def _cluster_ip(self, spec: dict[str, Any], used: set[str], name: str) -> None:
        want = spec.get("clusterIP")
        if want == "None":
            spec["clusterIPs"] = ["None"]
            return
        if want:
            try:
                ok = ipaddress.ip_address(want) in self.network
            except ValueError:
                ok = False
            if not ok:
                raise invalid(
                    "Service",
                    name,
                    [
                        Cause(
                            "FieldValueInvalid",
                            f'Invalid value: "{want}": provided IP is not in the '
                            f'valid range. The range of valid IPs is {self.network}',
                            "spec.clusterIPs",
                        )
                    ],
                )
            if want in used:
                raise invalid(
                    "Service",
                    name,
                    [
                        Cause(
                            "FieldValueInvalid",
                            f'Invalid value: []string{{"{want}"}}: failed to '
                            f'allocate IP {want}: provided IP is already allocated',
                            "spec.clusterIPs",
                        )
                    ],
                )
        else:
            want = self._free_ip(used)
        spec["clusterIP"] = want
        spec["clusterIPs"] = [want]

    def _free_ip(self, used: set[str]) -> str:
        size = self.network.num_addresses
        # reserve network, .1 (kubernetes) and .10 (DNS) for the well-known services
        for _ in range(64):
            cand = str(self.network.network_address + self._rand.randrange(11, size - 1))
            if cand not in used:
                return cand
        for off in range(11, size - 1):
            cand = str(self.network.network_address + off)
            if cand not in used:
                return cand
        raise invalid("Service", "", [Cause("FieldValueInvalid", "range is full", "spec.clusterIPs")])

    def _node_port(self, port: dict[str, Any], used: set[int], name: str, index: int) -> None:
        lo, hi = self.node_ports
        want = port.get("nodePort")
        if want:
            if not lo <= int(want) <= hi:
                raise invalid(
                    "Service",
                    name,
                    [
                        Cause(
                            "FieldValueInvalid",
                            f"Invalid value: {want}: provided port is not in the "
                            f"valid range. The range of valid ports is {lo}-{hi}",
                            f"spec.ports[{index}].nodePort",
                        )
                    ],
                )
            if int(want) in used:
                raise invalid(
                    "Service",
                    name,
                    [
                        Cause(
                            "FieldValueInvalid",
                            f"Invalid value: {want}: provided port is already allocated",
                            f"spec.ports[{index}].nodePort",
                        )
                    ],
                )
        else:
            free = [p for p in range(lo, hi + 1) if p not in used]
            if not free:
                raise invalid(
                    "Service",
                    name,
                    [Cause("FieldValueInvalid", "range is full", f"spec.ports[{index}].nodePort")],
                )
            want = self._rand.choice(free)
        port["nodePort"] = int(want)
        used.add(int(want))
