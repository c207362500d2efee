"""Row printers for the core kinds: Service, Endpoints, EndpointSlice, Node, Namespace, Event,
ConfigMap, Secret, ServiceAccount, Lease, PriorityClass, PodDisruptionBudget, ResourceQuota, and the
generic fallback (Name, Created At).

Owns: those kinds' cells, and the endpoint / node-role formatting that only they use.
Must not import: the other printers, the column definitions, or the Table envelope.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from orchestra.api.tables.format import Cell, format_labels, format_service_ports, int_or_zero, since
from orchestra.objects import Obj, as_dict, only_dicts
from orchestra.objects.quantity import parse_or_none


def _external_ip(spec: Obj, status: Obj) -> str:
    external_ips = [str(ip) for ip in spec.get("externalIPs") or []]
    stype = spec.get("type")
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if stype == "LoadBalancer":
        ingress = only_dicts(as_dict(status.get("loadBalancer")).get("ingress"))
        lb = sorted(
            {str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname")}
        )
        if external_ips:
            return ",".join([*lb, *external_ips])
        return ",".join(lb) if lb else "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def print_service(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        str(meta.get("name", "")),
        str(spec.get("type", "")),
        str(cluster_ips[0]) if cluster_ips else "<none>",
        _external_ip(spec, status),
        format_service_ports(spec.get("ports")),
        since(meta.get("creationTimestamp"), now),
        format_labels(spec.get("selector")),
    ]


def _join_host_port(host: str, port: Any) -> str:
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]:{port}"
    except ValueError:
        pass  # a hostname, not an IP: printed as is
    return f"{host}:{port}"


def _list_with_more(items: list[str], count: int, limit: int = 3, *, empty: str = "<unset>") -> str:
    text = ",".join(items[:limit])
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or empty


def format_endpoints(obj: Obj) -> str:
    subsets = only_dicts(obj.get("subsets"))
    if not subsets:
        return "<none>"
    out: list[str] = []
    count = 0
    for ss in subsets:
        addresses = [str(a.get("ip", "")) for a in only_dicts(ss.get("addresses"))]
        ports = only_dicts(ss.get("ports"))
        if not ports:
            count += len(addresses)
            out += addresses
            continue
        for port in ports:
            count += len(addresses)
            out += [_join_host_port(a, port.get("port")) for a in addresses]
    return _list_with_more(out, count, empty="")


def print_endpoints(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    return [str(meta.get("name", "")), format_endpoints(obj), since(meta.get("creationTimestamp"), now)]


def print_endpointslice(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    ports = []
    for p in only_dicts(obj.get("ports")):
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        elif p.get("name") is not None:
            ports.append(str(p["name"]))
        else:
            ports.append("*")
    addresses = [str(a) for e in only_dicts(obj.get("endpoints")) for a in e.get("addresses") or []]
    return [
        str(meta.get("name", "")),
        str(obj.get("addressType", "")),
        _list_with_more(ports, len(ports)),
        _list_with_more(addresses, len(addresses)),
        since(meta.get("creationTimestamp"), now),
    ]


def node_roles(labels: Any) -> str:
    roles = set()
    for key, value in as_dict(labels).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/") :]:
            roles.add(key[len("node-role.kubernetes.io/") :])
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: Obj, kind: str) -> str:
    for a in only_dicts(status.get("addresses")):
        if a.get("type") == kind:
            return str(a.get("address", ""))
    return "<none>"


def print_node(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    states = [
        ("Ready" if c.get("status") == "True" else "NotReady")
        for c in only_dicts(status.get("conditions"))
        if c.get("type") == "Ready"
    ][-1:] or ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    info = as_dict(status.get("nodeInfo"))
    return [
        str(meta.get("name", "")),
        ",".join(states),
        node_roles(meta.get("labels")),
        since(meta.get("creationTimestamp"), now),
        str(info.get("kubeletVersion", "")),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        str(info.get("osImage") or "<unknown>"),
        str(info.get("kernelVersion") or "<unknown>"),
        str(info.get("containerRuntimeVersion") or "<unknown>"),
    ]


def print_namespace(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    return [
        str(meta.get("name", "")),
        str(as_dict(obj.get("status")).get("phase", "")),
        since(meta.get("creationTimestamp"), now),
    ]


def print_event(obj: Obj, now: datetime) -> list[Cell]:
    meta, involved = as_dict(obj.get("metadata")), as_dict(obj.get("involvedObject"))
    first = (
        since(obj.get("firstTimestamp"), now)
        if obj.get("firstTimestamp")
        else since(obj.get("eventTime"), now)
    )
    last = since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = int_or_zero(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = int_or_zero(series.get("count"))
    elif count == 0:
        count = 1
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = as_dict(obj.get("source"))
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        str(obj.get("type", "")),
        str(obj.get("reason", "")),
        target,
        str(involved.get("fieldPath", "")),
        f"{component}, {host}" if host else str(component),
        str(obj.get("message", "")).strip(),
        first,
        count,
        str(meta.get("name", "")),
    ]


def print_configmap(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    data = len(as_dict(obj.get("data"))) + len(as_dict(obj.get("binaryData")))
    return [str(meta.get("name", "")), data, since(meta.get("creationTimestamp"), now)]


def print_secret(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    return [
        str(meta.get("name", "")),
        str(obj.get("type", "")),
        len(as_dict(obj.get("data"))),
        since(meta.get("creationTimestamp"), now),
    ]


def print_serviceaccount(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    return [
        str(meta.get("name", "")),
        len(only_dicts(obj.get("secrets"))),
        since(meta.get("creationTimestamp"), now),
    ]


def print_lease(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    holder = as_dict(obj.get("spec")).get("holderIdentity")
    return [str(meta.get("name", "")), str(holder or ""), since(meta.get("creationTimestamp"), now)]


def print_controller_revision(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    controller = "<none>"
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            group = str(ref.get("apiVersion") or "").rpartition("/")[0]
            kind = str(ref.get("kind") or "").lower()
            controller = f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"
    return [str(meta.get("name", "")), controller, int_or_zero(obj.get("revision")),
            since(meta.get("creationTimestamp"), now)]


def print_priority_class(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    return [
        str(meta.get("name", "")),
        int_or_zero(obj.get("value")),
        bool(obj.get("globalDefault")),
        since(meta.get("creationTimestamp"), now),
        str(obj.get("preemptionPolicy") or "PreemptLowerPriority"),
    ]


def _quantity_text(value: Any) -> str:
    q = parse_or_none(value)
    return str(q) if q is not None else "0"


def print_resource_quota(obj: Obj, now: datetime) -> list[Cell]:
    """printResourceQuota: `name: used/hard` of every spec.hard resource, the `limits.*` ones in the
    Limit column and the rest in the Request column."""
    meta, status = as_dict(obj.get("metadata")), as_dict(obj.get("status"))
    used, hard = as_dict(status.get("used")), as_dict(status.get("hard"))
    columns: dict[bool, list[str]] = {False: [], True: []}
    for name in sorted(as_dict(as_dict(obj.get("spec")).get("hard"))):
        pieces = name.split(".")
        is_limit = len(pieces) > 1 and pieces[0] == "limits"
        columns[is_limit].append(f"{name}: {_quantity_text(used.get(name))}/{_quantity_text(hard.get(name))}")
    return [str(meta.get("name", "")), since(meta.get("creationTimestamp"), now),
            ", ".join(columns[False]), ", ".join(columns[True])]


def _intstr_or_na(value: Any) -> str:
    """IntOrString.String() of a set field, "N/A" for an unset one (printPodDisruptionBudget)."""
    return "N/A" if value is None else str(value)


def print_pdb(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
    return [
        str(meta.get("name", "")),
        _intstr_or_na(spec.get("minAvailable")),
        _intstr_or_na(spec.get("maxUnavailable")),
        int_or_zero(as_dict(obj.get("status")).get("disruptionsAllowed")),
        since(meta.get("creationTimestamp"), now),
    ]


def print_generic(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    return [str(meta.get("name", "")), str(meta.get("creationTimestamp") or "")]
