"""The service proxy (kube-proxy's role, userspace mode on trio).

Owns: one listener per Service port on its ClusterIP (TCP and UDP), on every NodePort, and on the
host address for `type: LoadBalancer` (the k3s ServiceLB idea, with status.loadBalancer filled);
forwarding to ready endpoints round-robin, or by client IP with `sessionAffinity: ClientIP`.
With `source_mark` (NetworkPolicy enforcement's, net/netpol/), the connection to the backend carries
the client's mark (a pod's address), so policies police the client pod, not this host.
Listeners follow Services live; backends follow EndpointSlices live, so an endpoint that stops
being ready gets no new connection from the next event on.
A Service whose sync fails (a stored object the proxy cannot digest) is logged and counted
(`statistics()["sync_errors"]`) and tried again on its next change; the others are unaffected.
`run()` may be called again after it raised (a supervisor restarting it): it opens every listener again.
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio

from orchestra.api.errors import ApiError
from orchestra.client.base import Client
from orchestra.controller.informer import Informer
from orchestra.net.common import SERVED_BY_ORCHESTRA, kind, slice_service_key
from orchestra.net.endpoints import Backends, endpoint_targets
from orchestra.net.pumps import PUMP, bulk, connect, mark_socket
from orchestra.objects import Obj, object_key

log = logging.getLogger("orchestra.net.proxy")

UDP_IDLE = 30.0
DEFAULT_AFFINITY_TIMEOUT = 10800


@attrs.frozen
class ListenKey:
    host: str
    port: int
    protocol: str  # TCP | UDP


class ServiceProxy:
    def __init__(self, client: Client, *, host_addresses: list[str], bind: Callable[[str], str] | None = None,
                 nodeport_host: str = "0.0.0.0",
                 source_mark: Callable[[str], int | None] | None = None,
                 load_balancer_status: bool = True) -> None:
        """`host_addresses[0]` answers LoadBalancer Services; `bind` maps a ClusterIP to the address
        actually bound (identity in production, where the service range is routed to `lo`);
        `source_mark(client address)` is the packet mark of the connection to the backend (None: none);
        `load_balancer_status`: this proxy writes LoadBalancer Services' status (the server's does; a
        joined node's proxy only serves them, as every kube-proxy does)."""
        self.client = client
        self.load_balancer_status = load_balancer_status
        self.source_mark = source_mark
        self.host_addresses = host_addresses
        self.bind = bind or (lambda ip: ip)
        self.nodeport_host = nodeport_host
        self.services = Informer(client, kind("Service"))
        self.slices = Informer(client, kind("EndpointSlice"), indexers={"service": slice_service_key})
        self._listeners: dict[ListenKey, tuple[trio.CancelScope, Backends]] = {}
        self._backends: dict[tuple[str, str], Backends] = {}
        self._dirty: set[str] = set()
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.errors: dict[ListenKey, str] = {}
        self.in_use: set[ListenKey] = set()  # of `errors`, those another socket holds (EADDRINUSE)
        self.sync_errors = 0
        self.services.add_handler(self._on_service)  # once: run() may run again on the same informers
        self.slices.add_handler(self._on_slice)

    # --- desired state -----------------------------------------------------------------------

    def _on_service(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        self._dirty.update(object_key(o) for o in (old, new) if o)
        self._wake.set()

    def _on_slice(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        for o in (old, new):
            if o:
                self._dirty.update(slice_service_key(o))
        self._wake.set()

    def desired(self, svc: Obj) -> list[tuple[ListenKey, Obj]]:
        spec = svc.get("spec") or {}
        stype = spec.get("type", "ClusterIP")
        if stype == "ExternalName" or SERVED_BY_ORCHESTRA in (
            (svc.get("metadata") or {}).get("annotations") or {}
        ):
            return []
        out: list[tuple[ListenKey, Obj]] = []
        cluster_ip = spec.get("clusterIP")
        for port in spec.get("ports") or []:
            proto = str(port.get("protocol", "TCP"))
            if proto not in ("TCP", "UDP"):
                continue
            if cluster_ip and cluster_ip != "None":
                out.append((ListenKey(self.bind(cluster_ip), int(port["port"]), proto), port))
            if stype in ("NodePort", "LoadBalancer") and port.get("nodePort"):
                out.append((ListenKey(self.nodeport_host, int(port["nodePort"]), proto), port))
            if stype == "LoadBalancer" and self.host_addresses:
                out.append((ListenKey(self.host_addresses[0], int(port["port"]), proto), port))
        return out

    async def _sync(self, key: str) -> None:
        ns, _, name = key.partition("/")
        svc = self.services.get(ns, name)
        wanted: dict[ListenKey, Obj] = dict(self.desired(svc)) if svc else {}
        slices = self.slices.by_index("service", key)
        for lk, port in wanted.items():
            bk = self._backends.setdefault(
                (key, port.get("name") or str(port["port"])), Backends(key, port.get("name") or "")
            )
            bk.target = endpoint_targets(port.get("name") or "", slices)
            aff = (svc or {}).get("spec", {}).get("sessionAffinity") == "ClientIP"
            tmo = (
                ((svc or {}).get("spec", {}).get("sessionAffinityConfig") or {}).get("clientIP") or {}
            ).get("timeoutSeconds")
            bk.affinity_timeout = float(tmo or DEFAULT_AFFINITY_TIMEOUT) if aff else None
            current = self._listeners.get(lk)
            if current is None or current[1] is not bk:
                if current is not None:
                    current[0].cancel()
                await self._open(lk, bk)
        for lk, (scope, bk) in list(self._listeners.items()):
            if bk.service == key and lk not in wanted:
                scope.cancel()
                del self._listeners[lk]
        if svc is None:
            for k in [k for k in self._backends if k[0] == key]:
                del self._backends[k]
        elif (svc.get("spec") or {}).get("type") == "LoadBalancer" and self.load_balancer_status:
            await self._set_lb_status(svc)

    async def _set_lb_status(self, svc: Obj) -> None:
        ingress = [{"ip": ip, "ipMode": "VIP"} for ip in self.host_addresses[:1]]
        if ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") == ingress:
            return
        m = svc["metadata"]
        try:
            await self.client.patch(
                kind("Service"),
                m["namespace"],
                m["name"],
                {"status": {"loadBalancer": {"ingress": ingress}}},
                subresource="status",
            )
        except ApiError as exc:
            log.warning(
                "could not set load balancer status of %s/%s: %s", m["namespace"], m["name"], exc.message
            )

    async def _open(self, lk: ListenKey, bk: Backends) -> None:
        assert self._nursery is not None
        try:
            scope = await self._nursery.start(self._listen, lk, bk)
        except OSError as exc:
            self.errors[lk] = str(exc)
            if exc.errno == errno.EADDRINUSE:
                self.in_use.add(lk)
            log.warning(
                "cannot listen on %s:%d/%s for %s: %s", lk.host, lk.port, lk.protocol, bk.service, exc
            )
            return
        self.errors.pop(lk, None)
        self.in_use.discard(lk)
        self._listeners[lk] = (scope, bk)

    async def _listen(
        self, lk: ListenKey, bk: Backends, *, task_status: trio.TaskStatus[trio.CancelScope]
    ) -> None:
        with trio.CancelScope() as scope:
            if lk.protocol == "TCP":
                listeners = await trio.open_tcp_listeners(lk.port, host=lk.host)
                task_status.started(scope)
                await trio.serve_listeners(lambda s: self._tcp_conn(s, bk), listeners)  # type: ignore[arg-type]
            else:
                family = trio.socket.AF_INET6 if ":" in lk.host else trio.socket.AF_INET
                with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
                    await sock.bind((lk.host, lk.port))
                    task_status.started(scope)
                    await self._udp_loop(sock, bk)

    # --- data path ---------------------------------------------------------------------------

    async def _tcp_conn(self, client: trio.SocketStream, bk: Backends) -> None:
        peer = client.socket.getpeername()[0]
        mark = self.source_mark(peer) if self.source_mark is not None else None
        tried: set[tuple[str, int]] = set()
        async with client:
            while True:
                backend = bk.pick(peer, tried)  # reads the live list: a removed endpoint is never picked
                if backend is None:
                    return  # no ready endpoint: close, like kube-proxy's REJECT
                tried.add(backend)
                try:
                    upstream = await connect(backend, mark=mark)
                except (OSError, trio.TooSlowError):
                    continue
                break
            bk.connections += 1
            bulk(client.socket)
            bulk(upstream.socket)
            # the connection stays on its backend until either side closes, whatever the
            # EndpointSlices do meanwhile (kube-proxy keeps conntrack entries the same way)
            async with upstream, trio.open_nursery() as nursery:
                nursery.start_soon(PUMP, client, upstream)
                await PUMP(upstream, client)  # in this task: one spawn less per connection

    async def _udp_loop(self, sock: trio.socket.SocketType, bk: Backends) -> None:
        flows: dict[Any, trio.socket.SocketType] = {}
        async with trio.open_nursery() as nursery:
            while True:
                data, addr = await sock.recvfrom(65535)
                up = flows.get(addr)
                if up is None:
                    backend = bk.pick(addr[0])
                    if backend is None:
                        continue
                    up = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
                    try:
                        mark_socket(up, self.source_mark(addr[0]) if self.source_mark is not None else None)
                        await up.connect(backend)
                    except OSError:  # like a lost datagram: the client retries
                        up.close()
                        continue
                    flows[addr] = up
                    nursery.start_soon(_udp_return, sock, up, addr, flows)
                try:
                    await up.send(data)
                except OSError:
                    pass  # the backend went away; the client will retry like with any UDP loss

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._listeners.clear()  # (on a restart) the old run's listeners went with its nursery
        self._backends.clear()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.services.run)
            await nursery.start(self.slices.run)
            self._dirty.update(self.services.keys())
            await self._drain()
            task_status.started()
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                await self._drain()

    async def _drain(self) -> None:
        while self._dirty:
            key = self._dirty.pop()
            try:
                await self._sync(key)
            except Exception:  # contained to this Service; its next change tries again
                self.sync_errors += 1
                log.exception("service proxy: syncing %s failed", key)

    def statistics(self) -> dict[str, Any]:
        return {
            "listeners": len(self._listeners),
            "errors": {f"{k.host}:{k.port}/{k.protocol}": v for k, v in self.errors.items()},
            "connections": sum(b.connections for b in self._backends.values()),
            "sync_errors": self.sync_errors,
        }


async def _udp_return(
    sock: trio.socket.SocketType, up: trio.socket.SocketType, addr: Any, flows: dict[Any, Any]
) -> None:
    with up:
        while True:
            with trio.move_on_after(UDP_IDLE) as idle:
                try:
                    data = await up.recv(65535)
                except OSError:
                    break
                await sock.sendto(data, addr)
            if idle.cancelled_caught:
                break
    flows.pop(addr, None)

