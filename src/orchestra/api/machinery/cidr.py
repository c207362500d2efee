"""CIDR parsing as k8s.io/utils/net's ParseCIDRSloppy does it (the parser kube's validation uses).

Owns: `parse_cidr(text)`: the network of an `address/prefix` string, or None when Go would refuse
it. Sloppy like kube: IPv4 octets may carry leading zeros ("010.0.0.0/8" is 10.0.0.0/8), the
prefix length may too, and host bits may be set ("10.1.2.3/8" is 10.0.0.0/8).
Must not import: anything in orchestra.api but errors.py.
"""

from __future__ import annotations

import ipaddress
import re

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SLOPPY_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


def parse_cidr(text: str) -> Network | None:
    addr, sep, prefix = text.partition("/")
    if not sep or not prefix.isdigit() or not prefix.isascii():
        return None
    m = _SLOPPY_IPV4.match(addr)
    if m:
        octets = [int(part) for part in m.groups()]
        if any(o > 255 for o in octets):
            return None
        addr = ".".join(map(str, octets))
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if ip.version == 6 and "%" in addr:  # a zone is an address, never a network
        return None
    bits = int(prefix)
    if bits > ip.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{ip}/{bits}", strict=False)
