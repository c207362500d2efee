"""The proxy subresources: pods/proxy, services/proxy and nodes/proxy (kube's ProxyREST and
ResourceLocation for each kind), any method, the path after `proxy/` passed on.

Owns: reading the name's `name`, `name:port` and `scheme:name:port` forms (SplitSchemeNamePort);
where each kind's request goes —
  * a pod: its IP (a global unicast address, else 400 "address not allowed") and the given port, or
    its first container's first declared port;
  * a service: a ready endpoint of the Endpoints of that name serving the port (by name; a number
    is first turned into the service port's name), whose address is the IP of the pod it names
    (503 "no endpoints available for service ..." otherwise);
  * a node: its InternalIP (then its Hostname) and the given port, or the kubelet port of its
    daemonEndpoints with https. orchestra runs no kubelet HTTP server, so a request for the kubelet
    port gets what kube answers for an unreachable kubelet (503 "error trying to reach service:
    dial tcp ...: connect: connection refused"); any other port is proxied like a pod's;
and the path rules of kube's UpgradeAwareHandler (an empty path is a 301 to `.../proxy/` for GET
and HEAD; a trailing slash is kept). The HTTP exchange itself is proxyhttp.py's.
Not built: upgrades (WebSocket) through the proxy (400 "Upgrade request required" is not what kube
answers: kube tunnels them; orchestra answers 400 "upgrades through the proxy are not supported").
Must not import: cli, reconcilers, node, net, or a runtime.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Sequence

import attrs

from orchestra.api.errors import ApiError, BadRequest, ServiceUnavailable
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.apiserver.http import Request, send_bytes
from orchestra.apiserver.proxyhttp import Upstream, forward
from orchestra.apiserver.routes import Route
from orchestra.objects import Obj, as_dict, as_dicts
from orchestra.streaming.portforward import Connect, open_tcp

VALID_SCHEMES = ("", "http", "https")
KUBELET_SCHEME = "https"
KUBELET_PORT = 10250  # kube-apiserver's --kubelet-port default
_ADDRESS_ORDER = ("InternalIP", "Hostname", "ExternalIP")  # like kubeadm's --kubelet-preferred-address-types


@attrs.frozen
class Target:
    scheme: str
    host: str
    port: str  # "" for none: the scheme's default


def split_scheme_name_port(name: str) -> tuple[str, str, str] | None:
    """utilnet.SplitSchemeNamePort: `name`, `name:port` or `scheme:name:port` (scheme http/https)."""
    parts = name.split(":")
    if len(parts) == 1:
        scheme, base, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, base, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, base, port = parts
    else:
        return None
    return (scheme, base, port) if base and scheme in VALID_SCHEMES else None


def _global_unicast(ip: str) -> bool:
    """Go's net.IP.IsGlobalUnicast (private ranges included)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    broadcast = addr == ipaddress.ip_address("255.255.255.255")
    return not (addr.is_unspecified or addr.is_loopback or addr.is_multicast or addr.is_link_local
                or broadcast)


class ProxyHandler:
    """pods/proxy, services/proxy and nodes/proxy for ApiServer: `ProxyHandler(core)`."""

    def __init__(self, core: ApiCore, *, connect: Connect = open_tcp,
                 choose: Callable[[Sequence[int]], int] = random.choice) -> None:
        self.core = core
        self._connect = connect  # tests: a fake network
        self._choose = choose  # kube picks a random subset and address

    async def handle(self, req: Request, route: Route) -> None:
        if "upgrade" in req.headers.get("connection", "").lower():
            raise BadRequest("upgrades through the proxy are not supported by orchestra")
        parsed = split_scheme_name_port(route.name or "")
        noun = {"Pod": "pod", "Service": "service", "Node": "node"}[route.rt.kind]
        if parsed is None:
            raise BadRequest(f"invalid {noun} request {route.name!r}".replace("'", '"'))
        scheme, name, port = parsed
        resolve = {"Pod": self._pod, "Service": self._service, "Node": self._node}[route.rt.kind]
        target = resolve(route.namespace, name, scheme, port, route.name or "")
        path = _suffix(req, route)
        if path == "" and req.method in ("GET", "HEAD"):
            query = req.scope.get("query_string", b"")
            location = req.path.rstrip("/") + "/" + ("?" + query.decode("latin-1") if query else "")
            await send_bytes(req.send, 301, b"", b"text/plain", [(b"location", location.encode("latin-1"))])
            return
        await forward(req, Upstream(target.scheme or "http", target.host, target.port, path or "/"),
                      self._connect, prefix=_prefix(req, path))

    # --- where each kind's request goes ---------------------------------------------------------

    def _rt(self, kind: str) -> ResourceType:
        rt = self.core.registry.by_kind(kind)
        assert rt is not None
        return rt

    def _pod(self, namespace: str | None, name: str, scheme: str, port: str, ident: str) -> Target:
        pod = self.core.get(self._rt("Pod"), namespace, name)
        if not port:
            containers = as_dicts(as_dict(pod.get("spec")).get("containers"))
            ports = [p for c in containers for p in as_dicts(c.get("ports"))[:1]]
            port = str(ports[0].get("containerPort")) if ports else ""
        ip = str(as_dict(pod.get("status")).get("podIP") or "")
        if not _global_unicast(ip):
            raise BadRequest("address not allowed")
        return Target(scheme, ip, port)

    def _service(self, namespace: str | None, name: str, scheme: str, port: str, ident: str) -> Target:
        if port.isdigit():  # a port number: the name of the service port with that number
            service = self.core.get(self._rt("Service"), namespace, name)
            ports = as_dicts(as_dict(service.get("spec")).get("ports"))
            found = next((p for p in ports if p.get("port") == int(port)), None)
            if found is None:
                raise ServiceUnavailable(f'no service port {int(port)} found for service "{name}"')
            port = str(found.get("name") or "")
        endpoints = self.core.get(self._rt("Endpoints"), namespace, name)
        subsets = as_dicts(endpoints.get("subsets"))
        if not subsets:
            raise ServiceUnavailable(f'no endpoints available for service "{name}"')
        start = self._choose(range(len(subsets)))
        for i in range(len(subsets)):
            subset = subsets[(start + i) % len(subsets)]
            addresses = as_dicts(subset.get("addresses"))
            for sp in as_dicts(subset.get("ports")):
                if str(sp.get("name") or "") != port or not addresses:
                    continue
                first = self._choose(range(len(addresses)))
                for j in range(len(addresses)):
                    address = addresses[(first + j) % len(addresses)]
                    if self._valid_address(namespace, address):
                        return Target(scheme, str(address.get("ip")), str(sp.get("port")))
        raise ServiceUnavailable(f'no endpoints available for service "{ident}"')

    def _valid_address(self, namespace: str | None, address: Obj) -> bool:
        """isValidAddress: the address names a pod of the namespace that has that IP."""
        ref = as_dict(address.get("targetRef"))
        if not ref or ref.get("namespace") != namespace:
            return False
        try:
            pod = self.core.get(self._rt("Pod"), namespace, str(ref.get("name") or ""))
        except ApiError:
            return False
        ips = [str(i.get("ip")) for i in as_dicts(as_dict(pod.get("status")).get("podIPs"))]
        return str(address.get("ip")) in ips

    def _node(self, namespace: str | None, name: str, scheme: str, port: str, ident: str) -> Target:
        node = self.core.get(self._rt("Node"), None, name)
        status = as_dict(node.get("status"))
        addresses = {a.get("type"): str(a.get("address") or "") for a in as_dicts(status.get("addresses"))}
        host = next((addresses[t] for t in _ADDRESS_ORDER if addresses.get(t)), "")
        kubelet = as_dict(as_dict(status.get("daemonEndpoints")).get("kubeletEndpoint")).get("Port")
        if not isinstance(kubelet, int) or kubelet <= 0:
            kubelet = KUBELET_PORT
        if not host:
            raise ApiError(f"no preferred addresses found; known addresses: {list(addresses.values())}")
        try:
            loopback = ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_link_local
        except ValueError:
            loopback = False  # a host name: kube resolves and checks it; orchestra's nodes name IPs
        if loopback:
            raise BadRequest("address not allowed")
        if not port or port == str(kubelet):
            return Target(KUBELET_SCHEME, host, str(kubelet))
        return Target(scheme, host, port)


def _segments(route: Route) -> int:
    """How many path segments come before the proxied path: /api/v1[/namespaces/NS]/pods/NAME/proxy."""
    base = 2 if not route.rt.group else 3
    return base + (2 if route.namespace is not None else 0) + 3


def _suffix(req: Request, route: Route) -> str:
    """The raw (still escaped) path after `.../proxy`: "" for none, "/" and "/a/b/" as sent."""
    raw = req.scope.get("raw_path") or req.path.encode("latin-1")
    parts = raw.decode("latin-1").split("?", 1)[0].split("/")[1:]
    rest = parts[_segments(route):]
    return "/" + "/".join(rest) if rest else ""


def _prefix(req: Request, path: str) -> str:
    """The request path before the proxied path (kube's PathPrepend for Location rewrites)."""
    raw = (req.scope.get("raw_path") or req.path.encode("latin-1")).decode("latin-1").split("?", 1)[0]
    return raw[: len(raw) - len(path)] if path and raw.endswith(path) else raw.rstrip("/")
