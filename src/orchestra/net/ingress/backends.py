"""From an Ingress backend (a Service and a port) to the endpoints that serve it, followed live.

Owns: `BackendIndex.target(ref)` -> forward.Target | forward.Refusal. The Service port is the one
whose `port` is the backend's number, or whose `name` is the backend's port name; its ready
endpoints come from the Service's EndpointSlices (net.endpoints: the slice port of that name; only
ready endpoints). The endpoint list of each backend is computed once and kept until its Service or
one of its EndpointSlices changes (informer events drop it), so an endpoint that stops being ready
gets no new request from the next event on. 503 for a Service that does not exist, has no such
port, is an ExternalName, or has no ready endpoint; a resource backend is 503 too (not served).
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

from orchestra.client.base import Client
from orchestra.controller.informer import Informer
from orchestra.net.common import kind, slice_service_key
from orchestra.net.endpoints import Backends, endpoint_targets
from orchestra.net.ingress.forward import Refusal, Target
from orchestra.net.ingress.routing import BackendRef
from orchestra.objects import Obj, as_dict, only_dicts


def service_port(svc: Obj, ref: BackendRef) -> Obj | None:
    for port in only_dicts(as_dict(svc.get("spec")).get("ports")):
        if (ref.port_name and port.get("name") == ref.port_name) or (
                not ref.port_name and port.get("port") == ref.port_number):
            return port
    return None


class BackendIndex:
    def __init__(self, client: Client) -> None:
        self.services = Informer(client, kind("Service"))
        self.slices = Informer(client, kind("EndpointSlice"), indexers={"service": slice_service_key})
        self._cache: dict[BackendRef, Backends] = {}
        self._by_service: dict[str, set[BackendRef]] = {}
        self.services.add_handler(self._on_service)  # once: run() may run again on the same informers
        self.slices.add_handler(self._on_slice)

    def _forget(self, service_key: str) -> None:
        for ref in self._by_service.pop(service_key, ()):
            self._cache.pop(ref, None)

    def _on_service(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        for obj in (old, new):
            if obj is not None:
                meta = as_dict(obj.get("metadata"))
                self._forget(f"{meta.get('namespace')}/{meta.get('name')}")

    def _on_slice(self, _t: str, old: Obj | None, new: Obj | None) -> None:
        for obj in (old, new):
            for key in slice_service_key(obj) if obj is not None else ():
                self._forget(key)

    def clear(self) -> None:
        self._cache.clear()
        self._by_service.clear()

    def target(self, ref: BackendRef) -> Target | Refusal:
        backends = self._cache.get(ref)
        if backends is None:
            found = self._resolve(ref)
            if isinstance(found, Refusal):
                return found
            backends = self._cache[ref] = found
            self._by_service.setdefault(f"{ref.namespace}/{ref.service}", set()).add(ref)
        if not backends.target:
            return Refusal(503, f"503 Service Unavailable: no ready endpoint for {ref}")
        return Target(str(ref), backends)

    def _resolve(self, ref: BackendRef) -> Backends | Refusal:
        if ref.resource:
            return Refusal(503, f"503 Service Unavailable: the resource backend {ref} is not served by this "
                                "ingress controller")
        svc = self.services.get(ref.namespace, ref.service)
        if svc is None:
            return Refusal(503, f"503 Service Unavailable: service {ref.namespace}/{ref.service} not found")
        if as_dict(svc.get("spec")).get("type") == "ExternalName":
            return Refusal(503, f"503 Service Unavailable: service {ref.namespace}/{ref.service} is an "
                                "ExternalName Service, which this ingress controller does not serve")
        port = service_port(svc, ref)
        if port is None:
            return Refusal(503, f"503 Service Unavailable: service {ref.namespace}/{ref.service} has no port "
                                f"{ref.port_name or ref.port_number}")
        name = str(port.get("name") or "")
        slices = self.slices.by_index("service", f"{ref.namespace}/{ref.service}")
        return Backends(f"{ref.namespace}/{ref.service}", name, endpoint_targets(name, slices))
