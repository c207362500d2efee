"""The kernel side of the pod network across nodes: routes, the VXLAN device and its neighbour and
forwarding entries through iproute2 (`ip -j`, `bridge -j`: JSON out, never its human text), the
no-NAT and forward rules through `iptables` / `iptables-restore` (exit codes only; iptables-nft, as
netavark uses it), and `net.ipv4.ip_forward`.

Owns: `RouteKernel(netns=None)` (with a name every command runs in that network namespace: `ip -n
NAME`, `bridge -n NAME`, `ip netns exec NAME iptables ...`), `RouteKernelError` (the command and
its words), the value types `Route`, `Neighbour`, `FdbEntry`, `Vtep`, `Path`, `Firewall`, and
`ROUTE_PROTO`, the route protocol number marking every route orchestra adds (94: unassigned in
iproute2's rt_protos; `ip -j route show proto 94` lists exactly ours).
Firewall: two chains per node, `ORCH-PODNET-<hash of the node's name>` in `nat` and `filter`, each
rewritten whole in one `iptables-restore --noflush` transaction (a chain declaration flushes it), and
one jump to each, inserted first in `nat POSTROUTING` / `filter FORWARD`, with the comment
`orchestra-pod-network`. The nat chain ACCEPTs pod -> other node's pod: ACCEPT in a nat chain ends
the nat table's walk for the packet, so netavark's MASQUERADE further down POSTROUTING never sees it
(a RETURN in our own chain would return into POSTROUTING and reach it). netavark appends its rules,
so the jumps stay ahead of its masquerade. A chain per node keeps two PodRoutes in one namespace (a
joined node on the server's host) out of each other's rules.
Must not import: the rest of net (it runs the commands it is handed), the API, the store.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from typing import Any

import attrs
import trio

ROUTE_PROTO = 94
COMMENT = "orchestra-pod-network"
TIMEOUT = 10.0
HOOKS = (("nat", "POSTROUTING"), ("filter", "FORWARD"))  # where the jumps to a node's chains go


class RouteKernelError(Exception):
    """A kernel command failed or could not be run; the message names the command."""

    def __init__(self, command: list[str], message: str) -> None:
        super().__init__(f"{shlex.join(command)}: {message}")
        self.command = command


@attrs.frozen
class Route:
    """`dst via gateway [dev D onlink] proto ROUTE_PROTO`; dev None: the kernel picks the link."""

    dst: str
    gateway: str
    dev: str | None = None
    onlink: bool = False


@attrs.frozen
class Neighbour:
    ip: str
    mac: str


@attrs.frozen
class FdbEntry:
    mac: str
    dst: str  # the remote node's address the VXLAN packets for `mac` go to


@attrs.frozen
class Vtep:
    """The VXLAN device as it should be."""

    device: str
    mac: str
    address: str  # its /32
    vni: int
    port: int
    mtu: int


@attrs.frozen
class Path:
    """How this host reaches an address: `local` (it is ours), `link` (on a shared link: no
    gateway) or `gateway` (through a router); through `dev`, from this host's address `source`."""

    kind: str
    dev: str | None = None
    source: str | None = None


@attrs.frozen
class Firewall:
    """The rules of one node: nat accepts (src, dst) pairs before the masquerade, filter accepts them
    in FORWARD."""

    chain: str
    nat: tuple[tuple[str, str], ...] = ()
    forward: tuple[tuple[str, str], ...] = ()


def chain_name(node: str) -> str:
    """At most 28 characters, as iptables wants; the same for the same node on every start."""
    return "ORCH-PODNET-" + hashlib.sha256(node.encode()).hexdigest()[:12].upper()


class RouteKernel:
    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.ip = shutil.which("ip") or "/usr/sbin/ip"
        self.bridge = shutil.which("bridge") or "/usr/sbin/bridge"
        self.iptables = shutil.which("iptables") or "/usr/sbin/iptables"
        self.iptables_restore = shutil.which("iptables-restore") or "/usr/sbin/iptables-restore"
        self.sysctl = shutil.which("sysctl") or "/usr/sbin/sysctl"
        self.commands = 0

    # --- running commands -------------------------------------------------------------------------

    def _iproute(self, binary: str, *args: str) -> list[str]:
        return [binary, *(["-n", self.netns] if self.netns else []), *args]

    def _inside(self, *args: str) -> list[str]:
        return [self.ip, "netns", "exec", self.netns, *args] if self.netns else list(args)

    async def _run(self, command: list[str], stdin: bytes | None = None) -> bytes:
        self.commands += 1
        try:
            with trio.fail_after(TIMEOUT):
                proc = await trio.run_process(command, stdin=stdin, capture_stdout=True, capture_stderr=True,
                                              check=False)
        except (OSError, trio.TooSlowError) as exc:
            raise RouteKernelError(command, f"cannot run: {exc!r}") from None
        if proc.returncode != 0:
            words = proc.stderr.decode(errors="replace").strip()
            raise RouteKernelError(command, words or f"exit status {proc.returncode}")
        return bytes(proc.stdout)

    async def _ok(self, command: list[str]) -> bool:
        """The exit code as the answer (iptables -C)."""
        try:
            await self._run(command)
        except RouteKernelError:
            return False
        return True

    async def _json(self, command: list[str]) -> list[dict[str, Any]]:
        out = await self._run(command)
        try:
            data = json.loads(out or b"[]")
        except ValueError as exc:
            raise RouteKernelError(command, f"unreadable JSON: {exc}") from None
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    # --- routes ---------------------------------------------------------------------------------

    async def path_to(self, address: str) -> Path:
        found = await self._json(self._iproute(self.ip, "-j", "route", "get", address))
        route = found[0] if found else {}
        kind = "local" if route.get("type") == "local" else "gateway" if route.get("gateway") else "link"
        return Path(kind, route.get("dev"), route.get("prefsrc"))

    async def routes(self) -> set[Route]:
        found = await self._json(self._iproute(self.ip, "-j", "route", "show", "proto", str(ROUTE_PROTO)))
        return {Route(str(r.get("dst")), str(r.get("gateway") or ""), r.get("dev"),
                      "onlink" in (r.get("flags") or [])) for r in found}

    def _route_args(self, route: Route) -> list[str]:
        dev = ["dev", route.dev] if route.dev else []
        return [route.dst, "via", route.gateway, *dev, *(["onlink"] if route.onlink else []),
                "proto", str(ROUTE_PROTO)]

    async def set_route(self, route: Route, *, replace: bool) -> None:
        """`replace` swaps a route of the same destination (ours: the caller knows), else `add`, which
        refuses to shadow a route that is there (a local bridge's, the administrator's)."""
        verb = "replace" if replace else "add"
        await self._run(self._iproute(self.ip, "route", verb, *self._route_args(route)))

    async def delete_route(self, route: Route) -> None:
        await self._run(self._iproute(self.ip, "route", "del", *self._route_args(route)))

    # --- the VXLAN device -----------------------------------------------------------------------

    async def link(self, name: str) -> dict[str, Any] | None:
        """The VXLAN device as `ip -j -d link show` has it; None when there is none."""
        found = await self._json(self._iproute(self.ip, "-j", "-d", "link", "show", "type", "vxlan"))
        return next((link for link in found if link.get("ifname") == name), None)

    async def ensure_vtep(self, vtep: Vtep) -> None:
        """The device with these settings, up, holding its address (a device of other settings is
        made again)."""
        current = await self.link(vtep.device)
        if current is not None and not _same_vtep(current, vtep):
            await self.delete_link(vtep.device)
            current = None
        if current is None:
            await self._run(self._iproute(
                self.ip, "link", "add", vtep.device, "address", vtep.mac, "mtu", str(vtep.mtu),
                "type", "vxlan", "id", str(vtep.vni), "dstport", str(vtep.port), "nolearning"))
        if current is None or "UP" not in (current.get("flags") or []):
            await self._run(self._iproute(self.ip, "link", "set", "dev", vtep.device, "up"))
        await self._run(self._iproute(self.ip, "addr", "replace", f"{vtep.address}/32", "dev", vtep.device))

    async def delete_link(self, name: str) -> None:
        if await self.link(name) is not None:
            await self._run(self._iproute(self.ip, "link", "del", "dev", name))

    async def neighbours(self, dev: str) -> set[Neighbour]:
        found = await self._json(self._iproute(self.ip, "-j", "neigh", "show", "dev", dev,
                                               "nud", "permanent"))
        return {Neighbour(str(n["dst"]), str(n["lladdr"])) for n in found if n.get("dst") and n.get("lladdr")}

    async def set_neighbour(self, dev: str, n: Neighbour) -> None:
        await self._run(self._iproute(self.ip, "neigh", "replace", n.ip, "lladdr", n.mac, "dev", dev, "nud",
                                      "permanent"))

    async def delete_neighbour(self, dev: str, n: Neighbour) -> None:
        await self._run(self._iproute(self.ip, "neigh", "del", n.ip, "dev", dev))

    async def fdb(self, dev: str) -> set[FdbEntry]:
        found = await self._json(self._iproute(self.bridge, "-j", "fdb", "show", "dev", dev))
        return {FdbEntry(str(e["mac"]), str(e["dst"])) for e in found
                if e.get("dst") and e.get("mac") and e.get("state") == "permanent"}

    async def set_fdb(self, dev: str, e: FdbEntry) -> None:
        await self._run(self._iproute(self.bridge, "fdb", "replace", e.mac, "dev", dev, "dst", e.dst, "self",
                                      "permanent"))

    async def delete_fdb(self, dev: str, e: FdbEntry) -> None:
        await self._run(self._iproute(self.bridge, "fdb", "del", e.mac, "dev", dev, "dst", e.dst, "self"))

    # --- forwarding and the firewall ------------------------------------------------------------

    async def ensure_forwarding(self) -> None:
        """net.ipv4.ip_forward = 1 (written only when it is not: a write resets per-device settings)."""
        value = await self._run(self._inside(self.sysctl, "-n", "net.ipv4.ip_forward"))
        if value.strip() != b"1":
            await self._run(self._inside(self.sysctl, "-q", "-w", "net.ipv4.ip_forward=1"))


    async def set_firewall(self, fw: Firewall) -> None:
        lines = []
        for table, pairs in (("nat", fw.nat), ("filter", fw.forward)):
            lines += [f"*{table}", f":{fw.chain} - [0:0]"]  # declared: created, or flushed when it exists
            lines += [f"-A {fw.chain} -s {src} -d {dst} -m comment --comment {COMMENT} -j ACCEPT"
                      for src, dst in pairs]
            lines.append("COMMIT")
        await self._run(self._inside(self.iptables_restore, "-w", "--noflush"),
                        ("\n".join(lines) + "\n").encode())
        rule = _jump(fw.chain)
        for table, hook in HOOKS:
            if not await self._ok(self._inside(self.iptables, "-w", "-t", table, "-C", hook, *rule)):
                await self._run(self._inside(self.iptables, "-w", "-t", table, "-I", hook, "1", *rule))

    async def remove_firewall(self, chain: str) -> None:
        """The jumps (every copy), then the chains; what is not there is no error."""
        rule = _jump(chain)
        for table, hook in HOOKS:
            while await self._ok(self._inside(self.iptables, "-w", "-t", table, "-C", hook, *rule)):
                await self._run(self._inside(self.iptables, "-w", "-t", table, "-D", hook, *rule))
            if await self._ok(self._inside(self.iptables, "-w", "-t", table, "-F", chain)):
                await self._run(self._inside(self.iptables, "-w", "-t", table, "-X", chain))


def _jump(chain: str) -> list[str]:
    return ["-m", "comment", "--comment", COMMENT, "-j", chain]


def _same_vtep(link: dict[str, Any], vtep: Vtep) -> bool:
    info = link.get("linkinfo") or {}
    data = info.get("info_data") or {}
    return (info.get("info_kind") == "vxlan" and data.get("id") == vtep.vni and data.get("port") == vtep.port
            and str(link.get("address", "")).lower() == vtep.mac and link.get("mtu") == vtep.mtu)
