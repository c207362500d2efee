"""Row printers for networking.k8s.io/v1: Ingress and IngressClass (printIngress, printIngressClass
of kube 1.32's pkg/printers/internalversion).

Owns: those kinds' cells: the class (`<none>` without one), up to three hosts (`*` for none, then
"+ N more..."), the load balancer addresses (sorted, unique; never clipped: the apiserver prints
wide), the ports ("80", or "80, 443" with TLS) and an IngressClass's parameters reference.
Must not import: the other printers, the column definitions, or the Table envelope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.api.tables.format import Cell, since
from orchestra.objects import Obj, as_dict, only_dicts

MAX_HOSTS = 3


def format_hosts(rules: Any) -> str:
    """formatHosts: the first three non-empty hosts; rules past the third are counted, not listed."""
    rules = only_dicts(rules)
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == MAX_HOSTS:
            more = True
        if not more and rule.get("host"):
            hosts.append(str(rule["host"]))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - MAX_HOSTS} more..." if more else text


def ingress_addresses(status: Obj) -> str:
    """ingressLoadBalancerStatusStringer (wide): each entry's ip, else its hostname; sorted, unique."""
    found = set()
    for entry in only_dicts(as_dict(status.get("loadBalancer")).get("ingress")):
        if entry.get("ip"):
            found.add(str(entry["ip"]))
        elif entry.get("hostname"):
            found.add(str(entry["hostname"]))
    return ",".join(sorted(found))


def print_ingress(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
    class_name = spec.get("ingressClassName")
    return [
        str(meta.get("name", "")),
        "<none>" if class_name is None else str(class_name),
        format_hosts(spec.get("rules")),
        ingress_addresses(as_dict(obj.get("status"))),
        "80, 443" if only_dicts(spec.get("tls")) else "80",
        since(meta.get("creationTimestamp"), now),
    ]


def print_ingress_class(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
    parameters = "<none>"
    params = spec.get("parameters")
    if isinstance(params, dict):
        group = params.get("apiGroup")
        parameters = str(params.get("kind") or "") + (f".{group}" if group is not None else "")
        parameters += "/" + str(params.get("name") or "")
    return [
        str(meta.get("name", "")),
        str(spec.get("controller") or ""),
        parameters,
        since(meta.get("creationTimestamp"), now),
    ]
