"""Which pods NetworkPolicies isolate and what they allow, exactly as kube defines it.

Owns: `pod_rules(policies, endpoints, namespaces, node=, extra=)` -> one `PodRules` per pod of this
node that some policy selects:
  * a pod is isolated for ingress (egress) when a policy of its namespace selects it with
    "Ingress" ("Egress") in policyTypes; then only what some rule of those policies allows passes
    (no rules: nothing; a rule without `from`/`to` allows every peer, one without `ports` every
    port and protocol);
  * a peer is a podSelector (pods of the policy's namespace), a namespaceSelector (every pod of the
    matching namespaces), both (matching pods of matching namespaces) or an ipBlock (cidr minus
    except);
  * a port is a number, a range (port..endPort) or a name, resolved per pod: on the policed pod for
    ingress, on each destination pod for egress (a destination that is no pod has no named ports).
`extra` endpoints are selectable like pods but never policed (the cluster DNS, served by orchestra
as kube-system's kube-dns pods would be). Namespace labels always include
`kubernetes.io/metadata.name`, as kube-apiserver guarantees.
Must not import: the client, the controller runtime, the nft adapter (pure functions of objects).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from orchestra.api.errors import BadRequest
from orchestra.api.machinery.selectors import LabelSelector, from_label_selector_object
from orchestra.net.netpol.model import PROTOCOLS, Allow, Endpoint, Peers, PodRules, PortMatch
from orchestra.net.netpol.ranges import addresses, block, union
from orchestra.objects import Obj, as_dict, as_dicts, as_list

NAME_LABEL = "kubernetes.io/metadata.name"
DIRECTIONS = {"Ingress": ("ingress", "from"), "Egress": ("egress", "to")}


def pod_rules(policies: Iterable[Obj], endpoints: Iterable[Endpoint], namespaces: Mapping[str, Obj], *,
              node: str, extra: Iterable[Endpoint] = ()) -> list[PodRules]:
    """The isolation of every pod on `node`, sorted by address; pods no policy selects are left out.
    A rule's peers are resolved once, whatever number of pods its policy selects."""
    pods = list(endpoints)
    view = _View([*pods, *extra], namespaces)
    by_namespace: dict[str, list[_Policy]] = defaultdict(list)
    for obj in policies:
        policy = _Policy(obj, view)
        by_namespace[policy.namespace].append(policy)
    out = []
    for pod in sorted(pods, key=lambda p: p.address):
        if pod.node != node:
            continue
        selecting = [p for p in by_namespace.get(pod.namespace, []) if p.selects(pod)]
        ingress, egress = (_allows(selecting, pod, policy_type) for policy_type in DIRECTIONS)
        if ingress is not None or egress is not None:
            out.append(PodRules(pod, ingress, egress))
    return out


def _allows(policies: list[_Policy], pod: Endpoint, policy_type: str) -> tuple[Allow, ...] | None:
    isolating = [p for p in policies if policy_type in p.types]
    if not isolating:
        return None
    return tuple(allow for p in isolating for rule in p.rules(policy_type) for allow in rule.allows(pod))


class _View:
    """The endpoints and namespace labels peer selectors are evaluated against."""

    def __init__(self, endpoints: list[Endpoint], namespaces: Mapping[str, Obj]) -> None:
        self.endpoints = endpoints
        self.in_namespace: dict[str, list[Endpoint]] = defaultdict(list)
        for endpoint in endpoints:
            self.in_namespace[endpoint.namespace].append(endpoint)
        self.namespace_labels: dict[str, dict[str, str]] = {}
        for name in {*namespaces, *self.in_namespace}:
            meta = as_dict(as_dict(namespaces.get(name)).get("metadata"))
            # the name label is immutable and always set by kube-apiserver
            self.namespace_labels[name] = {**as_dict(meta.get("labels")), NAME_LABEL: name}


def _selector(sel: Obj) -> LabelSelector | None:
    try:
        return from_label_selector_object(sel)
    except BadRequest:  # validation refuses such a selector; one stored before it matches nothing
        return None


class _Policy:
    def __init__(self, obj: Obj, view: _View) -> None:
        meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
        self.obj, self.view = obj, view
        self.namespace = str(meta.get("namespace") or "")
        self.name = str(meta.get("name") or "")
        self.selector = _selector(as_dict(spec.get("podSelector")))
        self.types = [str(t) for t in as_list(spec.get("policyTypes"))]
        self._rules: dict[str, list[_Rule]] = {}

    def selects(self, pod: Endpoint) -> bool:
        return self.selector is not None and self.selector.matches(pod.labels)

    def rules(self, policy_type: str) -> list[_Rule]:
        """The policy's rules of that direction, resolved on first use."""
        if policy_type not in self._rules:
            field, peers_field = DIRECTIONS[policy_type]
            specs = as_dicts(as_dict(self.obj.get("spec")).get(field))
            origin = f"{self.namespace}/{self.name} {field}"
            self._rules[policy_type] = [_Rule(rule, peers_field, self.namespace, self.view, f"{origin}[{i}]")
                                        for i, rule in enumerate(specs)]
        return self._rules[policy_type]


class _Rule:
    """One ingress or egress rule with its peers resolved."""

    def __init__(self, rule: Obj, peers_field: str, namespace: str, view: _View, origin: str) -> None:
        self.origin, self.view = origin, view
        self.egress = peers_field == "to"
        self.ports = as_dicts(rule.get("ports"))
        peer_specs = as_dicts(rule.get(peers_field))
        self.selected: list[Endpoint] | None = None  # None: every peer (no from / to)
        self.peers: Peers | None = None
        if peer_specs:
            self.selected, blocks = _peers(peer_specs, namespace, view)
            self.peers = union(addresses(e.address for e in self.selected), blocks)
        self._named: dict[tuple[str, str], list[Allow]] = {}

    def allows(self, pod: Endpoint) -> list[Allow]:
        if self.peers == ():
            return []  # the rule's peers are nobody
        if not self.ports:
            return [Allow(self.peers, None, self.origin)]
        return [allow for port in self.ports for allow in self._port_allows(port, pod)]

    def _port_allows(self, port: Obj, pod: Endpoint) -> list[Allow]:
        protocol = str(port.get("protocol") or "TCP")
        if protocol not in PROTOCOLS:
            return []  # validation refuses it; an object stored before that matches nothing
        number: Any = port.get("port")
        if number is None or isinstance(number, int):
            end = port.get("endPort") if isinstance(port.get("endPort"), int) else number
            return [Allow(self.peers, PortMatch(PROTOCOLS[protocol], number, end), self.origin)]
        name = str(number)
        if not self.egress:  # resolved on the policed pod; any peer, as the rule says
            resolved = pod.port_named(name, protocol)
            if resolved is None:
                return []
            return [Allow(self.peers, PortMatch(PROTOCOLS[protocol], resolved, resolved), self.origin)]
        if (name, protocol) not in self._named:
            self._named[name, protocol] = self._named_egress(name, protocol)
        return self._named[name, protocol]

    def _named_egress(self, name: str, protocol: str) -> list[Allow]:
        """Resolved on each destination pod (all of them when `to` is empty); ipBlocks have no names."""
        by_number: dict[int, list[int]] = defaultdict(list)
        for endpoint in self.view.endpoints if self.selected is None else self.selected:
            resolved = endpoint.port_named(name, protocol)
            if resolved is not None:
                by_number[resolved].append(endpoint.address)
        return [Allow(addresses(ips), PortMatch(PROTOCOLS[protocol], n, n), self.origin)
                for n, ips in sorted(by_number.items())]


def _peers(specs: list[Obj], namespace: str, view: _View) -> tuple[list[Endpoint], Peers]:
    """The endpoints the rule's pod/namespace selectors pick, and the union of its ipBlocks."""
    chosen: dict[str, Endpoint] = {}
    blocks: list[Peers] = []
    for spec in specs:
        ip_block = spec.get("ipBlock")
        if isinstance(ip_block, dict):
            excepts = [str(e) for e in as_list(ip_block.get("except"))]
            blocks.append(block(str(ip_block.get("cidr") or ""), excepts))
            continue
        pod_sel, ns_sel = spec.get("podSelector"), spec.get("namespaceSelector")
        if not isinstance(pod_sel, dict) and not isinstance(ns_sel, dict):
            continue  # validation refuses an empty peer
        pods = _selector(pod_sel if isinstance(pod_sel, dict) else {})
        spaces = _selector(ns_sel) if isinstance(ns_sel, dict) else None
        if pods is None or (spaces is None and isinstance(ns_sel, dict)):
            continue
        names = ([namespace] if spaces is None
                 else [n for n, labels in view.namespace_labels.items() if spaces.matches(labels)])
        for name in names:
            for endpoint in view.in_namespace.get(name, []):
                if pods.matches(endpoint.labels):
                    chosen[endpoint.key] = endpoint
    return list(chosen.values()), union(*blocks)
