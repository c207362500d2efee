"""IPv4 address sets as sorted, disjoint intervals: what an ipBlock (cidr minus except) and a set of
pods become, and how nft's JSON writes them.

Owns: `block(cidr, excepts)`, `addresses(ips)`, `union(...)` (sorted, merged: nft refuses
overlapping elements in an interval set), and the nft set elements of a `Peers` value, as addresses
(`ip saddr { 10.0.0.0/8, 10.88.0.7 }`) or as packet marks (the service proxy marks a connection
with its client's address, see reconciler.py).
Must not import: the rest of net (values only).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from orchestra.api.machinery.cidr import parse_cidr
from orchestra.net.netpol.model import Interval, Peers


def union(*parts: Iterable[Interval]) -> Peers:
    """The merged, sorted intervals covering every part (touching intervals become one)."""
    out: list[Interval] = []
    for lo, hi in sorted(i for part in parts for i in part):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def addresses(ips: Iterable[int]) -> Peers:
    return union((ip, ip) for ip in ips)


def block(cidr: str, excepts: Iterable[str]) -> Peers:
    """An ipBlock's IPv4 addresses: its cidr without its except ranges. An IPv6 block is empty here:
    pods have IPv4 addresses only (Podman's network), so it can match none of their traffic."""
    network = parse_cidr(cidr)
    if not isinstance(network, ipaddress.IPv4Network):
        return ()
    kept = [(int(network.network_address), int(network.broadcast_address))]
    for text in excepts:
        hole = parse_cidr(text)
        if isinstance(hole, ipaddress.IPv4Network):
            kept = _minus(kept, (int(hole.network_address), int(hole.broadcast_address)))
    return union(kept)


def _minus(intervals: list[Interval], hole: Interval) -> list[Interval]:
    out: list[Interval] = []
    for lo, hi in intervals:
        if hole[1] < lo or hole[0] > hi:
            out.append((lo, hi))
            continue
        if lo < hole[0]:
            out.append((lo, hole[0] - 1))
        if hi > hole[1]:
            out.append((hole[1] + 1, hi))
    return out


def address_elements(peers: Peers) -> list[Any]:
    """nft JSON set elements: an address, a prefix when the interval is exactly one, else a range."""
    out: list[Any] = []
    for lo, hi in peers:
        first = ipaddress.IPv4Address(lo)
        if lo == hi:
            out.append(str(first))
            continue
        size = hi - lo + 1
        bits = size.bit_length() - 1
        if size == 1 << bits and lo % size == 0:
            out.append({"prefix": {"addr": str(first), "len": 32 - bits}})
        else:
            out.append({"range": [str(first), str(ipaddress.IPv4Address(hi))]})
    return out


def mark_elements(peers: Peers) -> list[Any]:
    """The same addresses as packet mark values (an address as its 32-bit integer)."""
    return [lo if lo == hi else {"range": [lo, hi]} for lo, hi in peers]
