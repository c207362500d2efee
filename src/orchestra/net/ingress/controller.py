"""The ingress controller: orchestra's built-in implementation of the `orchestra.io/ingress-controller`
IngressClass, serving HTTP and HTTPS on the host.

Owns: following Ingresses, IngressClasses, Secrets (and, through backends.BackendIndex, Services and
EndpointSlices) with informers; the routing table of the Ingresses it serves (routing.serves),
rebuilt when one of them or a class changes; the SNI certificates (certs.CertStore) from their TLS
Secrets; the listeners (`http` and/or `https`, each HOST:PORT, bound before anything else: a port
that cannot be bound fails `run()` with ListenError, unless that listener is `optional`: then it is
logged and reported in `statistics()["errors"]`, and the rest still serve); and each served Ingress's
status.loadBalancer.ingress: the address clients reach the listeners on (the listen host when it is
a specific address, else the host's first address, as the service proxy does for LoadBalancer
Services), removed again when the Ingress leaves this controller. `resolve(host, path)` is the data
path's routing call (forward.Router). A sync step that fails is logged, counted and tried again on
the next change. `run()` may be called again after it raised (a supervisor restarting it).
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import ssl
from collections.abc import Collection
from typing import Any

import attrs
import trio

from orchestra.api.errors import ApiError
from orchestra.client.base import Client
from orchestra.controller.informer import Informer
from orchestra.net.common import INGRESS_CONTROLLER, kind
from orchestra.net.ingress import certs
from orchestra.net.ingress.backends import BackendIndex
from orchestra.net.ingress.connection import serve_connection
from orchestra.net.ingress.forward import Refusal, Stats, Target
from orchestra.net.ingress.routing import RoutingTable, serves
from orchestra.net.ingress.upstream import IDLE_TIMEOUT, Pool
from orchestra.net.pumps import bulk
from orchestra.objects import Obj, annotations_of, as_dict, name_of, namespace_of

log = logging.getLogger("orchestra.net.ingress")

Listen = tuple[str, int]
NOT_FOUND = "404 Not Found: no Ingress rule matches this host and path"
_ANY = ("", "0.0.0.0", "::")


class ListenError(Exception):
    """A listener that was asked for cannot be bound."""

    def __init__(self, scheme: str, listen: Listen, reason: str) -> None:
        super().__init__(f"cannot listen for {scheme.upper()} on {listen[0]}:{listen[1]} ({reason})")
        self.scheme, self.listen, self.reason = scheme, listen, reason


def _age(obj: Obj) -> tuple[str, str, str]:
    return str(as_dict(obj.get("metadata")).get("creationTimestamp") or ""), namespace_of(obj), name_of(obj)


def status_entry(address: str) -> Obj:
    """status.loadBalancer.ingress[0] for the address clients use: an IP, or a name (`localhost`)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return {"hostname": address}  # a name given as the listen host: kube wants it as hostname
    return {"ip": address}


def _routing_view(obj: Obj | None) -> Any:
    """What of an Ingress the routing table and the certificates depend on (not its status)."""
    if obj is None:
        return None
    return obj.get("spec"), annotations_of(obj).get("kubernetes.io/ingress.class"), _age(obj)


class IngressController:
    def __init__(self, client: Client, *, http: Listen | None, https: Listen | None,
                 tls_default: ssl.SSLContext | None = None, host_addresses: list[str] | None = None,
                 controller: str = INGRESS_CONTROLLER, optional: Collection[str] = ()) -> None:
        """`optional`: the listeners ("http", "https") that may stay off when their port cannot be
        bound; any other such listener fails run()."""
        self.client = client
        self.listen = {name: value for name, value in (("http", http), ("https", https)) if value is not None}
        self.optional = frozenset(optional)
        self.controller = controller
        self.host_addresses = host_addresses or []
        self.ingresses = Informer(client, kind("Ingress"))
        self.classes = Informer(client, kind("IngressClass"))
        self.secrets = Informer(client, kind("Secret"))
        self.backends = BackendIndex(client)
        if https is not None and tls_default is None:
            raise ValueError("an HTTPS listener needs a default certificate")
        self.certs = certs.CertStore(tls_default) if tls_default is not None else None
        self.table = RoutingTable()
        self.pool = Pool()
        self.stats = Stats()
        self.bound: dict[str, Listen] = {}
        self.errors: dict[str, str] = {}
        self.sync_errors = 0
        self._tls_cache: dict[str, tuple[str, ssl.SSLContext | None, list[str]]] = {}
        self._routes_dirty = self._certs_dirty = True
        self._wake = trio.Event()
        self.ingresses.add_handler(self._on_ingress)  # once: run() may run again on the same informers
        self.classes.add_handler(self._on_routes)
        self.secrets.add_handler(self._on_secret)

    # --- events -------------------------------------------------------------------------------

    def _on_ingress(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        if _routing_view(old) != _routing_view(new):
            self._routes_dirty = self._certs_dirty = True
        self._wake.set()  # a status change is checked too

    def _on_routes(self, _t: str, _old: Obj | None, _new: Obj | None) -> None:
        self._routes_dirty = self._certs_dirty = True
        self._wake.set()

    def _on_secret(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        if any(o is not None and f"{namespace_of(o)}/{name_of(o)}" in self._tls_cache for o in (old, new)):
            self._certs_dirty = True
            self._wake.set()

    # --- the data path's view ------------------------------------------------------------------

    def resolve(self, host: str, path: str) -> Target | Refusal:
        ref = self.table.route(host, path)
        if ref is None:
            return Refusal(404, NOT_FOUND)
        return self.backends.target(ref)

    def served(self) -> list[Obj]:
        """The Ingresses this controller serves, oldest first."""
        classes = {name_of(c): c for c in self.classes.list()}
        return sorted((i for i in self.ingresses.list() if serves(i, classes, self.controller)), key=_age)

    @property
    def address(self) -> str | None:
        """Where clients reach the listeners; None while none is bound."""
        for host, _port in self.bound.values():
            if host not in _ANY:
                return host
        if not self.bound:
            return None
        return self.host_addresses[0] if self.host_addresses else "127.0.0.1"

    # --- sync ----------------------------------------------------------------------------------

    async def _sync(self) -> None:
        steps = []
        if self._routes_dirty:
            steps.append(("routes", self._sync_routes))
        if self._certs_dirty:
            steps.append(("certificates", self._sync_certs))
        steps.append(("status", self._sync_status))
        self._routes_dirty = self._certs_dirty = False
        for what, step in steps:
            try:
                await step()
            except Exception:  # contained to this step; the next change tries again
                self.sync_errors += 1
                log.exception("ingress controller: syncing %s failed", what)

    async def _sync_routes(self) -> None:
        self.table = RoutingTable.build(self.served())
        await trio.lowlevel.checkpoint()

    async def _sync_certs(self) -> None:
        if self.certs is None:
            return
        by_host, by_names = certs.plan(self.served())
        loaded: dict[str, tuple[ssl.SSLContext | None, list[str]]] = {}
        for ref in dict.fromkeys([*by_host.values(), *by_names]):
            loaded[ref] = await self._load_secret(ref)
        self._tls_cache = {ref: self._tls_cache[ref] for ref in loaded if ref in self._tls_cache}
        contexts: dict[str, ssl.SSLContext] = {}
        for host, ref in by_host.items():
            ctx = loaded[ref][0]
            if ctx is not None:
                contexts[host] = ctx
        for ref in by_names:
            ctx, names = loaded[ref]
            for name in names if ctx is not None else ():
                contexts.setdefault(name, ctx)  # type: ignore[arg-type]
        self.certs.update(contexts)

    async def _load_secret(self, ref: str) -> tuple[ssl.SSLContext | None, list[str]]:
        ns, _, name = ref.partition("/")
        secret = self.secrets.get(ns, name)
        rv = str(as_dict(secret.get("metadata")).get("resourceVersion")) if secret is not None else ""
        cached = self._tls_cache.get(ref)
        if cached is not None and cached[0] == rv:
            return cached[1], cached[2]
        ctx: ssl.SSLContext | None = None
        names: list[str] = []
        if secret is None:
            log.warning("ingress: TLS Secret %s not found; its hosts get the default certificate", ref)
        else:
            try:
                ctx, names = await trio.to_thread.run_sync(certs.load, secret)
            except certs.CertError as exc:
                log.warning(
                    "ingress: TLS Secret %s cannot be used (%s); its hosts get the default certificate",
                    ref,
                    exc,
                )
        self._tls_cache[ref] = (rv, ctx, names)
        return ctx, names

    async def _sync_status(self) -> None:
        address = self.address
        mine = [status_entry(address)] if address else None
        classes = {name_of(c): c for c in self.classes.list()}
        for ing in self.ingresses.list():
            current = as_dict(as_dict(ing.get("status")).get("loadBalancer")).get("ingress")
            if serves(ing, classes, self.controller):
                if mine is not None and current != mine:
                    await self._set_status(ing, mine)
            elif mine is not None and current == mine:  # it left this controller: the address goes
                await self._set_status(ing, None)

    async def _set_status(self, ing: Obj, value: list[Obj] | None) -> None:
        patch = {"status": {"loadBalancer": {"ingress": value}}}
        try:
            await self.client.patch(
                kind("Ingress"), namespace_of(ing), name_of(ing), patch, subresource="status"
            )
        except ApiError as exc:  # deleted meanwhile, or a conflict: the next event brings it back here
            log.info(
                "ingress: cannot set the status of %s/%s: %s", namespace_of(ing), name_of(ing), exc.message
            )

    # --- listeners -----------------------------------------------------------------------------

    async def _serve(self, scheme: str, listeners: list[trio.SocketListener]) -> None:
        await trio.serve_listeners(functools.partial(self._accept, scheme), listeners)  # type: ignore[arg-type]

    async def _accept(self, scheme: str, tcp: trio.SocketStream) -> None:
        try:
            client_ip, port = tcp.socket.getpeername()[0], tcp.socket.getsockname()[1]
        except OSError:  # the client already left
            await trio.aclose_forcefully(tcp)
            return
        bulk(tcp.socket)
        stream: trio.abc.Stream = tcp
        if scheme == "https":
            assert self.certs is not None
            stream = trio.SSLStream(tcp, self.certs.context, server_side=True, https_compatible=True)
        await serve_connection(self, stream, scheme=scheme, client_ip=str(client_ip), port=int(port))

    async def _bind(self) -> dict[str, list[trio.SocketListener]]:
        """Each listener's sockets, bound before the informers start, so a port in use fails at once."""
        opened: dict[str, list[trio.SocketListener]] = {}
        try:
            for scheme, listen in self.listen.items():
                try:
                    opened[scheme] = await trio.open_tcp_listeners(listen[1], host=listen[0] or None)
                except OSError as exc:
                    reason = str(exc.strerror or exc)
                    if scheme not in self.optional:
                        raise ListenError(scheme, listen, reason) from exc
                    self.errors[scheme] = f"{listen[0]}:{listen[1]}: {reason}"
                    log.warning("ingress: cannot listen for %s on %s:%d (%s); it is off", scheme.upper(),
                                listen[0], listen[1], reason)
                    continue
                self.errors.pop(scheme, None)
                self.bound[scheme] = (listen[0], opened[scheme][0].socket.getsockname()[1])
        except BaseException:
            _close(opened)
            raise
        return opened

    # --- lifecycle -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.bound.clear()  # (on a restart) the old run's listeners were closed when it ended
        self.backends.clear()
        self.pool.close()
        self._routes_dirty = self._certs_dirty = True
        listeners = await self._bind()
        try:
            async with trio.open_nursery() as nursery:
                informers = [self.classes, self.ingresses, self.backends.services, self.backends.slices]
                if self.certs is not None:  # Secrets matter only for HTTPS
                    informers.append(self.secrets)
                for informer in informers:
                    await nursery.start(informer.run)
                await self._sync()  # routes before the first connection is accepted; then the status
                for scheme, sockets in listeners.items():
                    nursery.start_soon(self._serve, scheme, sockets)
                nursery.start_soon(self._sweep)
                task_status.started()
                while True:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    await self._sync()
        finally:
            self.pool.close()
            _close(listeners)

    async def _sweep(self) -> None:
        while True:
            await trio.sleep(IDLE_TIMEOUT / 2)
            self.pool.sweep()

    def statistics(self) -> dict[str, Any]:
        return {
            "listening": {k: f"{h}:{p}" for k, (h, p) in self.bound.items()},
            "errors": dict(self.errors),
            "hosts": len(self.table.hosts),
            "upstream_connects": self.pool.connects,
            "upstream_reuses": self.pool.reuses,
            "upstream_idle": self.pool.idle,
            "sync_errors": self.sync_errors,
            **attrs.asdict(self.stats),
        }


def _close(opened: dict[str, list[trio.SocketListener]]) -> None:
    """Close listening sockets (serve_listeners closes those it served; closing twice is harmless)."""
    for sockets in opened.values():
        for listener in sockets:
            listener.socket.close()
