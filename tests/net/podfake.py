"""A recording fake of net/podkernel.RouteKernel: the state a network namespace would hold (routes of
orchestra's protocol, the VXLAN device and its entries, the firewall chains, ip_forward), the
answers of `ip route get` from a table of shared links, and failures to order. Its refusals follow
the kernel's (an `add` over a route that is there, a route via a gateway on no link)."""

from __future__ import annotations

import ipaddress

import attrs

from orchestra.net.podkernel import FdbEntry, Firewall, Neighbour, Path, Route, RouteKernelError, Vtep


@attrs.define
class FakeKernel:
    links: dict[str, str] = attrs.Factory(lambda: {"10.0.0.0/24": "eth0"})  # shared subnet -> device
    local: set[str] = attrs.Factory(lambda: {"10.0.0.1"})  # this host's addresses
    host_routes: set[str] = attrs.Factory(set)  # destinations routed by someone else (not ours)
    routes_: set[Route] = attrs.Factory(set)
    vtep: Vtep | None = None
    neighbours_: set[Neighbour] = attrs.Factory(set)
    fdb_: set[FdbEntry] = attrs.Factory(set)
    firewall: dict[str, Firewall] = attrs.Factory(dict)  # chain -> rules
    forwarding: bool = False
    calls: list[tuple[str, object]] = attrs.Factory(list)
    fail: dict[str, int] = attrs.Factory(dict)  # "verb" or "verb arg" -> how many more times to refuse
    crash: Exception | None = None  # raised by every call (a bug, not a refusal)

    def _call(self, verb: str, arg: object = None) -> None:
        self.calls.append((verb, arg))
        if self.crash is not None:
            raise self.crash
        for key in (f"{verb} {arg}", verb):
            if self.fail.get(key, 0) > 0:
                self.fail[key] -= 1
                raise RouteKernelError(["ip", verb, str(arg)], "RTNETLINK answers: Operation not permitted")

    def verbs(self) -> list[str]:
        return [verb for verb, _ in self.calls]

    async def path_to(self, address: str) -> Path:
        self._call("path_to", address)
        if address in self.local:
            return Path("local", "lo", address)
        for net, dev in self.links.items():
            if ipaddress.IPv4Address(address) in ipaddress.IPv4Network(net):
                return Path("link", dev, self._source(net))
        return Path("gateway", "eth0", self._source(next(iter(self.links))))

    def _source(self, net: str) -> str | None:
        """This host's address on the link of `net` (what `ip route get` calls prefsrc)."""
        return next((a for a in sorted(self.local) if ipaddress.IPv4Address(a) in ipaddress.IPv4Network(net)),
                    None)

    async def routes(self) -> set[Route]:
        self._call("routes")
        return set(self.routes_)

    async def set_route(self, route: Route, *, replace: bool) -> None:
        self._call("set_route", route.dst)
        same = {r for r in self.routes_ if r.dst == route.dst}
        if route.dst in self.host_routes or (same and not replace):
            raise RouteKernelError(["ip", "route", "add", route.dst], "RTNETLINK answers: File exists")
        if route.dev == "orchvx0" and (self.vtep is None or not route.onlink):
            raise RouteKernelError(["ip", "route", "add", route.dst], "Nexthop has invalid gateway")
        self.routes_ = (self.routes_ - same) | {route}

    async def delete_route(self, route: Route) -> None:
        self._call("delete_route", route.dst)
        if route not in self.routes_:
            raise RouteKernelError(["ip", "route", "del", route.dst], "RTNETLINK answers: No such process")
        self.routes_.discard(route)

    async def ensure_vtep(self, vtep: Vtep) -> None:
        self._call("ensure_vtep", vtep.device)
        if self.vtep != vtep:
            self.vtep = vtep
            self.neighbours_.clear()
            self.fdb_.clear()

    async def delete_link(self, name: str) -> None:
        self._call("delete_link", name)
        if self.vtep is not None and self.vtep.device == name:
            self.vtep = None
            self.neighbours_.clear()
            self.fdb_.clear()
            self.routes_ = {r for r in self.routes_ if r.dev != name}  # the kernel drops them with it

    async def neighbours(self, dev: str) -> set[Neighbour]:
        self._call("neighbours", dev)
        return set(self.neighbours_)

    async def set_neighbour(self, dev: str, n: Neighbour) -> None:
        self._call("set_neighbour", n.ip)
        self.neighbours_ = {e for e in self.neighbours_ if e.ip != n.ip} | {n}

    async def delete_neighbour(self, dev: str, n: Neighbour) -> None:
        self._call("delete_neighbour", n.ip)
        self.neighbours_.discard(n)

    async def fdb(self, dev: str) -> set[FdbEntry]:
        self._call("fdb", dev)
        return set(self.fdb_)

    async def set_fdb(self, dev: str, e: FdbEntry) -> None:
        self._call("set_fdb", e.mac)
        self.fdb_ = {f for f in self.fdb_ if f.mac != e.mac} | {e}

    async def delete_fdb(self, dev: str, e: FdbEntry) -> None:
        self._call("delete_fdb", e.mac)
        self.fdb_.discard(e)

    async def ensure_forwarding(self) -> None:
        self._call("ensure_forwarding")
        self.forwarding = True

    async def set_firewall(self, fw: Firewall) -> None:
        self._call("set_firewall", fw.chain)
        self.firewall[fw.chain] = fw

    async def remove_firewall(self, chain: str) -> None:
        self._call("remove_firewall", chain)
        self.firewall.pop(chain, None)
