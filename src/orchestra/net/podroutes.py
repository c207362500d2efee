"""The pod network across nodes (a network plugin's role, as flannel's host-gw and vxlan backends):
every pod reaches every other pod by its address, without NAT.

Owns: `PodRoutes(client, node_name, *, own_networks, kernel=None)`, a long-lived component (`await
nursery.start(routes.run)`; run again after it raised). It publishes this node's pod networks (and
its VTEP MAC) as annotations on its own Node (podpeers.py) and watches the Nodes; every other Node
that publishes pod networks and has an InternalIP is a peer, reached
  * `local`   when its InternalIP is this host's (a joined node beside the server): nothing to route;
  * `host-gw` when its InternalIP is on a link this host shares (`ip route get` names no gateway)
              and this node's InternalIP is our address on that link (so both sides agree, see
              podpeers.plan): `CIDR via <its InternalIP>` for each of its networks;
  * `vxlan`   otherwise: through the VXLAN device (podpeers.py has the scheme), which is up while
              any other node is routed (a peer may see this node differently).
Every route carries protocol 94 (podkernel.ROUTE_PROTO): routes of that protocol no peer wants (a
Node deleted, its address or networks changed) are removed. In this node's namespace, traffic from
own_networks to the peers' networks is exempt from netavark's masquerade and accepted in FORWARD
(podkernel.py's chains), and net.ipv4.ip_forward is 1.
One level-based pass (`converge()`) makes the kernel match the Nodes; a Node change that can move a
route (its annotations or InternalIP, not a heartbeat) wakes it, and every RESYNC seconds it runs
anyway and asks the kernel again (a route someone deleted comes back). Faults: a Node with a
malformed annotation or address is logged once (again only when the problem changes) and skipped; a
failed kernel command is logged with the command and retried with backoff for that peer only (a
node-wide step, such as the firewall, for itself), while the peer's routes stay as they are.
`remove()` (after `run()` has returned) takes out every route, the VXLAN device and the firewall
chains; a stop without it leaves them (the node's pods keep running and the next start adopts them).
Several PodRoutes in one network namespace keep their own firewall chains but share the routes and
the VXLAN device (the same peers want the same routes there); `remove()` of one takes those out
until the other's next pass.
Must not import: apiserver, app, cli, reconcilers, node, runtime, the store.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from orchestra.api.errors import ApiError, NotFound
from orchestra.client.base import Client
from orchestra.controller.informer import Informer
from orchestra.net.common import kind
from orchestra.net.podkernel import Firewall, Path, RouteKernel, RouteKernelError, Vtep, chain_name
from orchestra.net.podpeers import (
    NETWORKS_ANNOTATION,
    VNI,
    VTEP_MAC_ANNOTATION,
    VXLAN_DEVICE,
    VXLAN_MTU,
    VXLAN_PORT,
    MalformedNode,
    NotAddressedYet,
    Peer,
    Plan,
    internal_ip,
    overlapping,
    peer_from_node,
    plan,
    published,
    vtep_address,
    vtep_mac,
)
from orchestra.objects import Obj, as_dict

log = logging.getLogger("orchestra.net.podroutes")

RESYNC = 60.0
RETRY_INITIAL = 1.0
RETRY_MAX = 60.0


def _node_key(name: str) -> str:
    return f"node/{name}"  # no step is named so: node names have no "/"


def _address(node: Obj | None) -> str | None:
    """A Node's InternalIP; None when it has none (or a malformed one)."""
    try:
        return internal_ip(node) if node is not None else None
    except MalformedNode:
        return None


def _view(node: Obj | None) -> tuple[Any, ...] | None:
    """What of a Node can move a route or the published annotations."""
    if node is None:
        return None
    annotations = as_dict(as_dict(node.get("metadata")).get("annotations"))
    addresses = tuple(str(a.get("address")) for a in as_dict(node.get("status")).get("addresses") or []
                      if isinstance(a, dict) and a.get("type") == "InternalIP")
    return annotations.get(NETWORKS_ANNOTATION), annotations.get(VTEP_MAC_ANNOTATION), addresses


class PodRoutes:
    def __init__(self, client: Client, node_name: str, *, own_networks: list[str],
                 kernel: RouteKernel | None = None, vxlan_device: str = VXLAN_DEVICE) -> None:
        self.client = client
        self.node_name = node_name
        self.own_networks = tuple(str(ipaddress.IPv4Network(n, strict=True)) for n in own_networks)
        self.kernel = kernel or RouteKernel()
        self.device = vxlan_device
        self.chain = chain_name(node_name)
        self.nodes = Informer(client, kind("Node"))
        self.nodes.add_handler(self._on_node)  # once: run() may run again on the same informer
        self._wake = trio.Event()
        self._paths: dict[str, tuple[str, Path]] = {}  # peer -> (its address, the way to it)
        self._modes: dict[str, str] = {}  # peer -> how it is reached now
        # "node/NAME" (a peer) or a node-wide step -> (failures, next attempt)
        self._retry: dict[str, tuple[int, float]] = {}
        self._reported: dict[str, str] = {}  # node -> the problem logged for it
        self._firewall: Firewall | None = None  # as last applied
        self._forwarding = False
        self._next_resync = 0.0
        self.routes_installed = 0
        self.converges = 0
        self.errors = 0
        self.last_error = ""

    def _on_node(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        if _view(old) != _view(new):
            self._wake.set()

    # --- the loop --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._paths.clear()  # (on a restart) ask the kernel again about everything
        self._retry.clear()
        self._firewall = None
        self._forwarding = False
        self._next_resync = 0.0
        async with trio.open_nursery() as nursery:
            await nursery.start(self.nodes.run)
            await self.converge()
            task_status.started()
            while True:
                with trio.move_on_at(self._next_wake()):
                    await self._wake.wait()
                self._wake = trio.Event()
                await self.converge()

    def _next_wake(self) -> float:
        """The next resync or the next retry due (one due already is tried by the next pass, if that
        pass still has something for it to do)."""
        now = trio.current_time()
        return min([self._next_resync, *(at for _n, at in self._retry.values() if at > now)])

    async def converge(self) -> None:
        """One pass: the annotations, the peers' routes and entries, the firewall."""
        self.converges += 1
        now = trio.current_time()
        if now >= self._next_resync:
            self._paths.clear()
            self._firewall = None
            self._forwarding = False
            self._next_resync = now + RESYNC
        own = self.nodes.get(None, self.node_name)
        address = _address(own)
        await self._step("publish", lambda: self._publish(own, address))
        if not self._forwarding:
            self._forwarding = await self._step("forwarding", self.kernel.ensure_forwarding)
        peers = self._peers()
        plans, held = await self._plans(peers, address)
        await self._apply(peers, plans, held, address)
        await self._step("firewall", lambda: self._set_firewall(peers))

    async def _step(self, key: str, action: Callable[[], Awaitable[None]]) -> bool:
        """Run a node-wide step unless it waits for its retry; True when it succeeded."""
        if not self._due(key):
            return False
        try:
            await action()
        except (RouteKernelError, ApiError) as exc:
            self._failed(key, exc)
            return False
        self._retry.pop(key, None)
        return True

    # --- failures ----------------------------------------------------------------------------------

    def _due(self, key: str) -> bool:
        return key not in self._retry or trio.current_time() >= self._retry[key][1]

    def _failed(self, key: str, exc: Exception) -> None:
        failures = self._retry.get(key, (0, 0.0))[0] + 1
        delay = min(RETRY_INITIAL * 2 ** (failures - 1), RETRY_MAX)
        self._retry[key] = (failures, trio.current_time() + delay)
        self.errors += 1
        self.last_error = str(exc)
        log.error("pod network: %s failed (retry in %.0fs): %s", key.replace("/", " ", 1), delay, exc)

    def _report(self, node: str, problem: str, *, waiting: bool = False) -> None:
        """Say once why `node` is not routed (a warning, unless it only waits for an address)."""
        if self._reported.get(node) != problem:
            self._reported[node] = problem
            (log.debug if waiting else log.warning)("pod network: node %s is not routed: %s", node, problem)

    # --- desired state -----------------------------------------------------------------------------

    async def _publish(self, own: Obj | None, address: str | None) -> None:
        if own is None:
            return  # its node agent has not registered it yet: its ADDED event wakes us
        want = published(self.own_networks, address)
        annotations = as_dict(as_dict(own.get("metadata")).get("annotations"))
        if all(annotations.get(k) == v for k, v in want.items()):
            return
        try:
            await self.client.patch(kind("Node"), None, self.node_name, {"metadata": {"annotations": want}})
        except NotFound:
            return  # deleted meanwhile: published again when it is back

    def _peers(self) -> list[Peer]:
        """The valid peers, by name; a Node that overlaps this node's or an earlier peer's networks is
        skipped (and reported)."""
        peers: list[Peer] = []
        taken = list(self.own_networks)
        seen = set()
        for node in sorted(self.nodes.list(), key=lambda n: str(as_dict(n.get("metadata")).get("name"))):
            name = str(as_dict(node.get("metadata")).get("name"))
            if name == self.node_name:
                continue
            seen.add(name)
            try:
                peer = peer_from_node(node)
                if peer is None:
                    self._reported.pop(name, None)
                    continue
                clash = overlapping(peer.networks, taken)
                if clash is not None:
                    raise MalformedNode(f"its networks {','.join(peer.networks)} overlap {clash}, "
                                        "which is routed already")
            except MalformedNode as exc:
                self._report(name, str(exc))
                continue
            taken.extend(peer.networks)
            peers.append(peer)
        for gone in [n for n in self._reported if n not in seen]:
            del self._reported[gone]
        return peers

    async def _plans(self, peers: list[Peer], address: str | None) -> tuple[dict[str, Plan], set[str]]:
        """The plan of every peer whose way is known; `held`: the peers whose kernel state stays as it
        is this pass (waiting for a retry, or failing now)."""
        plans: dict[str, Plan] = {}
        held: set[str] = set()
        names = {p.name for p in peers}
        for name in [n for n in self._paths if n not in names]:
            del self._paths[name]
        for key in [k for k in self._retry if k.startswith("node/") and k[5:] not in names]:
            del self._retry[key]  # gone, or skipped now: nothing left to retry
        for peer in peers:
            if not self._due(_node_key(peer.name)):
                held.add(peer.name)
                continue
            try:
                path = await self._path(peer)
                plans[peer.name] = plan(peer, path, self.device, address)
            except RouteKernelError as exc:
                self._failed(_node_key(peer.name), exc)
                held.add(peer.name)
                continue
            except MalformedNode as exc:
                self._report(peer.name, str(exc), waiting=isinstance(exc, NotAddressedYet))
                continue
            if plans[peer.name].mode == "vxlan" and self._vtep(address) is None:
                del plans[peer.name]
                self._report(peer.name, "it is reached over VXLAN and this node has no InternalIP yet",
                             waiting=True)
                held.add(peer.name)
        return plans, held

    async def _path(self, peer: Peer) -> Path:
        known = self._paths.get(peer.name)
        if known is None or known[0] != peer.address:
            known = (peer.address, await self.kernel.path_to(peer.address))
            self._paths[peer.name] = known
        return known[1]

    def _vtep(self, address: str | None) -> Vtep | None:
        if address is None or not self.own_networks:
            return None
        return Vtep(self.device, vtep_mac(address), vtep_address(self.own_networks), VNI, VXLAN_PORT,
                    VXLAN_MTU)

    # --- applying ----------------------------------------------------------------------------------

    async def _apply(self, peers: list[Peer], plans: dict[str, Plan], held: set[str],
                     address: str | None) -> None:
        if not self._due("routes"):
            return
        try:
            current = await self.kernel.routes()
        except RouteKernelError as exc:
            self._failed("routes", exc)
            return
        self._retry.pop("routes", None)
        # the device is up while any other node is routed, whichever way this node reaches it: the
        # other may reach this one over VXLAN (a view of the links that differs from ours)
        routed = any(p.mode != "local" for p in plans.values()) or any(
            self._modes.get(n) != "local" for n in held)
        vxlan = [name for name, p in plans.items() if p.mode == "vxlan"]
        failed = await self._vxlan_entries(plans, vxlan, held, address) if routed else set()
        ours = {r.dst for r in current}
        for name, p in plans.items():
            for route in p.routes:
                if name in failed or route in current:
                    continue
                # `replace` only what is ours: it would take over a route of the host's own
                if not await self._peer_step(name, partial(self.kernel.set_route, route,
                                                           replace=route.dst in ours)):
                    failed.add(name)
        for name in failed:
            del plans[name]
            held.add(name)
        keep = {net for p in peers if p.name in held for net in p.networks}  # held: left as they are
        wanted = {r.dst for p in plans.values() for r in p.routes} | keep
        for route in current:
            if route.dst not in wanted:
                await self._step("stale routes", partial(self.kernel.delete_route, route))
        if not routed:  # after the routes through it went
            await self._step("vxlan", partial(self.kernel.delete_link, self.device))
        self._modes = {**{n: m for n, m in self._modes.items() if n in held},
                       **{name: p.mode for name, p in plans.items()}}
        for name in plans:
            self._retry.pop(_node_key(name), None)
            self._reported.pop(name, None)
        self.routes_installed = sum(len(p.routes) for p in plans.values()) + len(
            [r for r in current if r.dst in keep])

    async def _vxlan_entries(self, plans: dict[str, Plan], vxlan: list[str], held: set[str],
                             address: str | None) -> set[str]:
        """The device and its neighbour and forwarding entries for the VXLAN peers; returns the peers
        that failed (all VXLAN peers while the device cannot be set up: a node-wide step)."""
        vtep = self._vtep(address)
        if vtep is None:
            return set()  # then there is no VXLAN peer: _plans held them
        if not self._due("vxlan"):
            return set(vxlan)
        try:
            await self.kernel.ensure_vtep(vtep)
            neighbours, fdb = await self.kernel.neighbours(self.device), await self.kernel.fdb(self.device)
        except RouteKernelError as exc:
            self._failed("vxlan", exc)
            return set(vxlan)
        self._retry.pop("vxlan", None)
        want_n = {nb: n for n in vxlan if (nb := plans[n].neighbour) is not None}
        want_f = {fe: n for n in vxlan if (fe := plans[n].fdb) is not None}
        if not any(self._modes.get(n) == "vxlan" for n in held):  # else its entries stay, whichever
            # stale ones first: a peer's new MAC (or address) replaces its old entry under the same key
            for stale in neighbours - set(want_n):
                await self._step("stale routes", partial(self.kernel.delete_neighbour, self.device, stale))
            for gone in fdb - set(want_f):
                await self._step("stale routes", partial(self.kernel.delete_fdb, self.device, gone))
        failed = set()
        for entry, name in want_n.items():
            if entry not in neighbours and not await self._peer_step(
                    name, partial(self.kernel.set_neighbour, self.device, entry)):
                failed.add(name)
        for fentry, name in want_f.items():
            if fentry not in fdb and not await self._peer_step(
                    name, partial(self.kernel.set_fdb, self.device, fentry)):
                failed.add(name)
        return failed

    async def _peer_step(self, name: str, action: Callable[[], Awaitable[None]]) -> bool:
        try:
            await action()
        except RouteKernelError as exc:
            self._failed(_node_key(name), exc)
            return False
        return True

    async def _set_firewall(self, peers: list[Peer]) -> None:
        theirs = sorted({net for p in peers for net in p.networks})
        fw = Firewall(self.chain,
                      nat=tuple((own, net) for own in self.own_networks for net in theirs),
                      forward=tuple(pair for own in self.own_networks for net in theirs
                                    for pair in ((net, own), (own, net))))
        if fw == self._firewall:
            return
        if not (fw.nat or fw.forward) and self._firewall is None:
            return  # no other node yet: a cluster of one leaves the host's firewall alone
        await self.kernel.set_firewall(fw)
        self._firewall = fw

    # --- the way out -------------------------------------------------------------------------------

    async def remove(self) -> None:
        """Take out every route of ROUTE_PROTO, the VXLAN device (its entries go with it) and this
        node's firewall chains; what fails is logged, the rest is still removed."""
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("routes", self._remove_routes),
            ("the VXLAN device", lambda: self.kernel.delete_link(self.device)),
            ("the firewall rules", lambda: self.kernel.remove_firewall(self.chain)),
        ]
        for what, action in steps:
            try:
                await action()
            except RouteKernelError as exc:
                self.errors += 1
                self.last_error = str(exc)
                log.warning("pod network: removing %s failed: %s", what, exc)
        self._firewall = None
        self._modes.clear()
        self.routes_installed = 0

    async def _remove_routes(self) -> None:
        for route in await self.kernel.routes():
            await self.kernel.delete_route(route)

    def statistics(self) -> dict[str, Any]:
        return {"routes": self.routes_installed, "nodes": dict(Counter(self._modes.values())),
                "errors": self.errors, "last_error": self.last_error, "skipped": sorted(self._reported),
                "retrying": sorted(self._retry), "converges": self.converges}
