"""networking.k8s.io/v1 NetworkPolicy (ValidateNetworkPolicy / ValidateNetworkPolicyUpdate of kube 1.32's
pkg/apis/networking/validation).

Owns: validate_network_policy, with kube's field paths, messages and order: object meta, the pod
selector, each ingress rule's ports then peers, each egress rule's ports then peers, the policy
types. A port is a protocol (TCP, UDP, SCTP), a number or a port name, and an endPort only after a
number; a peer is a pod selector, a namespace selector (or both), or an ipBlock alone, whose
`except` entries must be strict subsets of its `cidr`. Selector values an older object already had
stay allowed on its updates (validate()'s AllowInvalidLabelValueInSelector, in __init__).
Must not import: the pod, workload, service or config validators, or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.cidr import parse_cidr
from orchestra.api.machinery.field import (
    GoRepr,
    forbidden,
    go_quote,
    invalid,
    is_int,
    not_supported,
    required,
)
from orchestra.api.machinery.names import PORT_RANGE_MSG, is_dns1123_subdomain, is_valid_port_name
from orchestra.api.policy.validation.meta import validate_label_selector, validate_object_meta
from orchestra.objects import Obj, as_dict, as_dicts, as_list

PROTOCOLS = ("TCP", "UDP", "SCTP")  # kube lists them in this order, not sorted
POLICY_TYPES = ("Ingress", "Egress")
NOT_A_CIDR = "not a valid CIDR"


def validate_network_policy(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    return errs + _spec(as_dict(obj.get("spec")), "spec")


def _spec(spec: Obj, path: str) -> list[Cause]:
    errs = validate_label_selector(spec.get("podSelector"), f"{path}.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_dicts(spec.get(direction))):
            rule_path = f"{path}.{direction}[{i}]"
            for j, port in enumerate(as_dicts(rule.get("ports"))):
                errs += _port(port, f"{rule_path}.ports[{j}]")
            for j, peer in enumerate(as_dicts(rule.get(peers))):
                errs += _peer(peer, f"{rule_path}.{peers}[{j}]")
    return errs + _policy_types(as_list(spec.get("policyTypes")), f"{path}.policyTypes")


def _port(port: Obj, path: str) -> list[Cause]:
    """ValidateNetworkPolicyPort."""
    errs: list[Cause] = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    number, end = port.get("port"), port.get("endPort")
    if number is None:
        if end is not None:
            errs.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    elif is_int(number):
        if not 1 <= number <= 65535:
            errs.append(invalid(f"{path}.port", number, PORT_RANGE_MSG))
        if is_int(end):
            if end < number:
                errs.append(invalid(f"{path}.endPort", end, "must be greater than or equal to `port`"))
            if not 1 <= end <= 65535:
                errs.append(invalid(f"{path}.endPort", end, PORT_RANGE_MSG))
    else:
        if end is not None:
            errs.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
        errs += [invalid(f"{path}.port", str(number), m) for m in is_valid_port_name(str(number))]
    return errs


def _peer(peer: Obj, path: str) -> list[Cause]:
    """ValidateNetworkPolicyPeer: a null selector is an absent one, an empty one selects everything."""
    errs: list[Cause] = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if isinstance(peer.get(key), dict):
            count += 1
            errs += validate_label_selector(peer[key], f"{path}.{key}")
    block = peer.get("ipBlock")
    if isinstance(block, dict):
        count += 1
        errs += _ip_block(block, f"{path}.ipBlock")
    if count == 0:
        errs.append(required(path, "must specify a peer"))
    elif count > 1 and isinstance(block, dict):
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def _ip_block(block: Obj, path: str) -> list[Cause]:
    """ValidateIPBlock (1.32): a bad `except` entry ends the checks of this block, as in kube."""
    cidr = str(block.get("cidr") or "")
    if not cidr:
        return [required(f"{path}.cidr", "")]
    network = parse_cidr(cidr)
    if network is None:
        return [invalid(f"{path}.cidr", cidr, NOT_A_CIDR)]
    errs: list[Cause] = []
    for i, value in enumerate(as_list(block.get("except"))):
        text = str(value)
        excepted = parse_cidr(text)
        if excepted is None:
            return [*errs, invalid(f"{path}.except[{i}]", text, NOT_A_CIDR)]
        if not _strict_subset(excepted, network):
            errs.append(invalid(f"{path}.except[{i}]", text, "must be a strict subset of `cidr`"))
    return errs


def _strict_subset(inner: Any, outer: Any) -> bool:
    """Go's `outer.Contains(inner.IP) && outerBits < innerBits`."""
    return (inner.version == outer.version and inner.network_address in outer
            and outer.prefixlen < inner.prefixlen)


def _policy_types(types: list[Any], path: str) -> list[Cause]:
    if len(types) > len(POLICY_TYPES):
        shown = "[]networking.PolicyType{" + ", ".join(go_quote(str(t)) for t in types) + "}"
        return [invalid(path, GoRepr(shown), "may not specify more than two policyTypes")]
    return [not_supported(f"{path}[{i}]", t, POLICY_TYPES)
            for i, t in enumerate(types) if t not in POLICY_TYPES]
