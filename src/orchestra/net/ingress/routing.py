"""The routing table: which backend answers a request's host and path, from the Ingresses this
controller serves. Pure data: no I/O, no trio.

Owns:
* `serves(ingress, classes, controller)`: whether an Ingress belongs to this controller — its
  spec.ingressClassName (else the deprecated `kubernetes.io/ingress.class` annotation) names an
  IngressClass whose spec.controller is ours; an Ingress naming no class belongs to the default
  IngressClass's controller.
* `RoutingTable.build(ingresses)` and `route(host, path) -> BackendRef | None`:
  - hosts: a rule's host matches the request's host exactly (case-insensitive, port and trailing dot
    dropped); `*.example.com` matches exactly one more label (`a.example.com`, not `example.com` or
    `a.b.example.com`); a rule without host matches every host. An exact host is tried first, then
    the wildcard, then the rules without host: the first of these whose paths match the request
    wins (a request for a known host whose paths do not match falls through to the less specific
    rules, as Gateway API's precedence has it; ingress-nginx answers such a request with its default
    backend instead).
  - paths, as the Ingress spec defines them: Exact is the whole path, case-sensitive; Prefix is
    element-wise on `/`-separated elements, a trailing `/` of the rule ignored (`/foo` matches `/foo`
    and `/foo/bar`, not `/foobar`); ImplementationSpecific is served as Prefix (an empty path as
    `/`). The longest matching rule path wins; at equal length Exact beats Prefix; then the oldest
    Ingress (creationTimestamp, namespace, name) and the order of its rules and paths. Matching uses
    the request path as sent, without the query and without percent-decoding.
  - the default backend: the oldest served Ingress's spec.defaultBackend, for requests no rule takes.
Must not import: anything of orchestra but objects and api (the class helpers).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from orchestra.api.policy.ingressclass import default_ingress_class, requested_class
from orchestra.objects import Obj, as_dict, as_dicts, name_of, namespace_of


@attrs.frozen
class BackendRef:
    """A Service port (by number, or by name when `port_name` is set) in the Ingress's namespace, or
    a resource backend (`resource` = "Kind/name"), which this controller does not serve."""

    namespace: str
    service: str = ""
    port_number: int = 0
    port_name: str = ""
    resource: str = ""

    def __str__(self) -> str:
        if self.resource:
            return f"{self.namespace}/{self.resource}"
        return f"{self.namespace}/{self.service}:{self.port_name or self.port_number}"


@attrs.frozen
class PathRule:
    path: str  # Exact: as written; Prefix: without its trailing "/" ("" for "/")
    exact: bool
    backend: BackendRef
    order: tuple[str, str, str, int, int]  # the oldest Ingress, then its rule and path order

    def matches(self, path: str) -> bool:
        if self.exact:
            return path == self.path
        return not self.path or path == self.path or path.startswith(self.path + "/")

    @property
    def precedence(self) -> tuple[int, int]:
        return (-len(self.path), 0 if self.exact else 1)


def serves(ingress: Obj, classes: dict[str, Obj], controller: str) -> bool:
    """Whether `controller` serves this Ingress (`classes`: IngressClass name -> object)."""
    name = requested_class(ingress)
    cls = classes.get(name) if name is not None else default_ingress_class(list(classes.values()))
    return cls is not None and as_dict(cls.get("spec")).get("controller") == controller


def normalize_host(host: str) -> str:
    """A Host header as rules compare it: lower case, without port and trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        host = host[: host.find("]") + 1]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _backend(namespace: str, backend: Obj) -> BackendRef:
    resource = backend.get("resource")
    if isinstance(resource, dict):
        return BackendRef(namespace, resource=f"{resource.get('kind', '')}/{resource.get('name', '')}")
    service = as_dict(backend.get("service"))
    port = as_dict(service.get("port"))
    number = port.get("number")
    return BackendRef(namespace, str(service.get("name") or ""), number if isinstance(number, int) else 0,
                      str(port.get("name") or ""))


def _age(ingress: Obj) -> tuple[str, str, str]:
    created = str(as_dict(ingress.get("metadata")).get("creationTimestamp") or "")
    return created, namespace_of(ingress), name_of(ingress)


@attrs.define
class RoutingTable:
    exact: dict[str, list[PathRule]] = attrs.field(factory=dict)
    wildcard: dict[str, list[PathRule]] = attrs.field(factory=dict)  # "*.example.com" under "example.com"
    any_host: list[PathRule] = attrs.field(factory=list)
    default: BackendRef | None = None

    @classmethod
    def build(cls, ingresses: Iterable[Obj]) -> RoutingTable:
        table = cls()
        ordered = sorted(ingresses, key=_age)
        for ingress in ordered:
            table._add(ingress)
        for rules in (*table.exact.values(), *table.wildcard.values(), table.any_host):
            rules.sort(key=lambda r: (r.precedence, r.order))
        return table

    def _add(self, ingress: Obj) -> None:
        ns, spec, age = namespace_of(ingress), as_dict(ingress.get("spec")), _age(ingress)
        default = spec.get("defaultBackend")
        if self.default is None and isinstance(default, dict):
            self.default = _backend(ns, default)
        for i, rule in enumerate(as_dicts(spec.get("rules"))):
            host = str(rule.get("host") or "").lower()
            if host.startswith("*."):
                target = self.wildcard.setdefault(host[2:], [])
            elif host:
                target = self.exact.setdefault(host, [])
            else:
                target = self.any_host
            for j, p in enumerate(as_dicts(as_dict(rule.get("http")).get("paths"))):
                exact = p.get("pathType") == "Exact"
                path = str(p.get("path") or "")
                target.append(PathRule(path if exact else path.rstrip("/"), exact,
                                       _backend(ns, as_dict(p.get("backend"))), (*age, i, j)))

    def route(self, host: str, path: str) -> BackendRef | None:
        """The backend for a request (`host` as normalize_host gives it), or None (404)."""
        groups = [self.exact.get(host)]
        label, dot, parent = host.partition(".")
        if label and dot:
            groups.append(self.wildcard.get(parent))
        groups.append(self.any_host)
        for rules in groups:
            for rule in rules or ():
                if rule.matches(path):
                    return rule.backend
        return self.default

    @property
    def hosts(self) -> list[str]:
        """Every host a rule names (wildcards as written), sorted."""
        return sorted([*self.exact, *(f"*.{h}" for h in self.wildcard)])
