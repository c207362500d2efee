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
DIRECTIONS = (("Ingress", "ingress", "from"), ("Egress", "egress", "to"))


def pod_rules(policies: Iterable[Obj], endpoints: Iterable[Endpoint], namespaces: Mapping[str, Obj], *,
              node: str, extra: Iterable[Endpoint] = ()) -> list[PodRules]:
    """The isolation of every pod on `node`, sorted by address; pods no policy selects are left out."""
    pods = list(endpoints)
    view = _View([*pods, *extra], namespaces)
    by_namespace: dict[str, list[Obj]] = defaultdict(list)
    for policy in policies:
        by_namespace[str(as_dict(policy.get("metadata")).get("namespace") or "")].append(policy)
    out = []
    for pod in sorted(pods, key=lambda p: p.address):
        if pod.node != node:
            continue
        selecting = [p for p in by_namespace.get(pod.namespace, []) if _selects(p, pod)]
        ingress, egress = (_allows(selecting, pod, view, d) for d in DIRECTIONS)
        if ingress is not None or egress is not None:
            out.append(PodRules(pod, ingress, egress))
    return out


class _View:
    """The endpoints and namespace labels peer selectors are evaluated against."""

    def __init__(self, endpoints: list[Endpoint], namespaces: Mapping[str, Obj]) -> None:
        self.endpoints = endpoints
        self.namespaces = namespaces

    def namespace_labels(self, name: str) -> dict[str, str]:
        labels = dict(as_dict(as_dict(as_dict(self.namespaces.get(name)).get("metadata")).get("labels")))
        labels[NAME_LABEL] = name  # immutable and always set by kube-apiserver
        return labels


def _selector(sel: Obj) -> LabelSelector | None:
    try:
        return from_label_selector_object(sel)
    except BadRequest:  # validation refuses such a selector; one stored before it matches nothing
        return None


def _selects(policy: Obj, pod: Endpoint) -> bool:
    selector = _selector(as_dict(as_dict(policy.get("spec")).get("podSelector")))
    return selector is not None and selector.matches(pod.labels)


def _allows(policies: list[Obj], pod: Endpoint, view: _View, direction: tuple[str, str, str]
            ) -> tuple[Allow, ...] | None:
    policy_type, field, peers_field = direction
    isolating = [p for p in policies if policy_type in as_list(as_dict(p.get("spec")).get("policyTypes"))]
    if not isolating:
        return None
    out: list[Allow] = []
    for policy in isolating:
        meta = as_dict(policy.get("metadata"))
        for i, rule in enumerate(as_dicts(as_dict(policy.get("spec")).get(field))):
            origin = f"{meta.get('namespace')}/{meta.get('name')} {field}[{i}]"
            out += _rule_allows(rule, peers_field, str(meta.get("namespace") or ""), pod, view, origin)
    return tuple(out)


def _rule_allows(rule: Obj, peers_field: str, namespace: str, pod: Endpoint, view: _View,
                 origin: str) -> list[Allow]:
    peer_specs = as_dicts(rule.get(peers_field))
    selected, blocks = _peers(peer_specs, namespace, view) if peer_specs else (None, ())
    ports = as_dicts(rule.get("ports"))
    if not ports:
        peers = None if selected is None else union(addresses(e.address for e in selected), blocks)
        return [Allow(peers, None, origin)] if peers != () else []
    out: list[Allow] = []
    for port in ports:
        out += _port_allows(port, selected, blocks, pod, view, peers_field == "to", origin)
    return out


def _port_allows(port: Obj, selected: list[Endpoint] | None, blocks: Peers, pod: Endpoint, view: _View,
                 egress: bool, origin: str) -> list[Allow]:
    protocol = str(port.get("protocol") or "TCP")
    if protocol not in PROTOCOLS:
        return []  # validation refuses it; an object stored before that matches nothing
    nft_protocol = PROTOCOLS[protocol]
    number: Any = port.get("port")
    if number is None or isinstance(number, int):
        peers = None if selected is None else union(addresses(e.address for e in selected), blocks)
        end = port.get("endPort") if isinstance(port.get("endPort"), int) else number
        match = PortMatch(nft_protocol, number, end)
        return [Allow(peers, match, origin)] if peers != () else []
    name = str(number)
    if not egress:  # resolved on the policed pod; any peer, as the rule says
        resolved = pod.port_named(name, protocol)
        if resolved is None:
            return []
        peers = None if selected is None else union(addresses(e.address for e in selected), blocks)
        return [Allow(peers, PortMatch(nft_protocol, resolved, resolved), origin)] if peers != () else []
    # egress: resolved on each destination pod (all of them when `to` is empty); blocks have no names
    by_number: dict[int, list[int]] = defaultdict(list)
    for endpoint in view.endpoints if selected is None else selected:
        resolved = endpoint.port_named(name, protocol)
        if resolved is not None:
            by_number[resolved].append(endpoint.address)
    return [Allow(addresses(ips), PortMatch(nft_protocol, n, n), origin)
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
        for endpoint in view.endpoints:
            in_scope = (endpoint.namespace == namespace if spaces is None
                        else spaces.matches(view.namespace_labels(endpoint.namespace)))
            if in_scope and pods.matches(endpoint.labels):
                chosen[endpoint.key] = endpoint
    return list(chosen.values()), union(*blocks)
