"""Service networking: Service (types, ports, node ports, cluster IP immutability), Endpoints and
EndpointSlice.

Owns: the validators of those kinds.
Must not import: the pod, workload or config validators, or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    IMMUTABLE,
    GoRepr,
    duplicate,
    forbidden,
    go_quote,
    invalid,
    is_int,
    required,
    required_one_of,
)
from orchestra.api.machinery.names import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    port_number,
    port_number_or_name,
)
from orchestra.api.policy.validation.container import PROTOCOLS
from orchestra.api.policy.validation.meta import validate_labels, validate_object_meta
from orchestra.objects import Obj, as_dict, as_dicts, as_list

# --- services and the rest ------------------------------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)


def validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1035_label)
    stype = spec.get("type", "")
    headless = spec.get("clusterIP") == "None"
    ports = as_dicts(spec.get("ports"))
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports", ""))
    if stype == "ExternalName":
        if as_list(spec.get("clusterIPs")):
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs += [invalid("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname)]
        else:
            errs.append(required("spec.externalName", ""))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs += _validate_service_port(port, f"spec.ports[{i}]", names, require_name=len(ports) > 1)
    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), "spec.selector")
    errs += required_one_of(spec.get("sessionAffinity"), "spec.sessionAffinity", ("ClientIP", "None"))
    errs += required_one_of(stype, "spec.type", _SERVICE_TYPES)
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        node_port = port.get("nodePort")
        if node_port not in (None, 0):
            if stype == "ClusterIP":
                errs.append(forbidden(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif is_int(node_port) and not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.append(
                    invalid(
                        f"{p}.nodePort",
                        node_port,
                        "provided port is not in the valid range. The range of "
                        f"valid ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
                    )
                )
            key = (port.get("protocol"), node_port)
            if key in seen_node_ports:
                errs.append(duplicate(f"{p}.nodePort", node_port))
            seen_node_ports.add(key)
        key = (port.get("protocol"), port.get("port"))
        if key in seen_ports:
            errs.append(
                duplicate(p, GoRepr(f"core.ServicePort{{Protocol:{go_quote(str(key[0]))}, Port:{key[1]}}}"))
            )
        seen_ports.add(key)
    etp = spec.get("externalTrafficPolicy")
    if etp is not None and stype in ("ClusterIP", "ExternalName"):
        errs.append(
            invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
        )
    elif etp is not None:
        errs += required_one_of(etp, "spec.externalTrafficPolicy", ("Cluster", "Local"))
    if spec.get("internalTrafficPolicy") is not None:
        errs += required_one_of(spec["internalTrafficPolicy"], "spec.internalTrafficPolicy",
                                ("Cluster", "Local"))
    if old is not None:
        errs += _validate_cluster_ip_update(spec, as_dict(old.get("spec")))
    return errs


def _validate_service_port(port: Obj, path: str, names: set[str], *, require_name: bool) -> list[Cause]:
    errs: list[Cause] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(required(f"{path}.name", ""))
    elif name:
        errs += [invalid(f"{path}.name", name, m) for m in is_dns1123_label(name)]
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
    errs += port_number(port.get("port", 0), f"{path}.port")
    errs += required_one_of(port.get("protocol"), f"{path}.protocol", PROTOCOLS)
    errs += port_number_or_name(port.get("targetPort", 0), f"{path}.targetPort")
    return errs


def _validate_cluster_ip_update(new: Obj, old: Obj) -> list[Cause]:
    # Changing to/from ExternalName releases/allocates the IP: allowed. An empty new value means
    # "keep what was allocated" (the core carries it over).
    if "ExternalName" in (new.get("type"), old.get("type")):
        return []
    new_ips, old_ips = as_list(new.get("clusterIPs")), as_list(old.get("clusterIPs"))
    if new_ips and old_ips and new_ips[0] != old_ips[0]:
        return [invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
    new_ip, old_ip = new.get("clusterIP") or "", old.get("clusterIP") or ""
    if new_ip and old_ip and new_ip != old_ip:
        return [invalid("spec.clusterIP", new_ip, IMMUTABLE)]
    return []


def validate_endpointslice(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    address_type = obj.get("addressType") or ""
    errs += required_one_of(address_type, "addressType", ("FQDN", "IPv4", "IPv6"))
    for i, ep in enumerate(as_dicts(obj.get("endpoints"))):
        if not as_list(ep.get("addresses")):
            errs.append(required(f"endpoints[{i}].addresses", "must contain at least 1 address"))
    for i, port in enumerate(as_dicts(obj.get("ports"))):
        if port.get("port") is not None:
            errs += port_number(port.get("port"), f"ports[{i}].port")
        if port.get("protocol") is not None:
            errs += required_one_of(port.get("protocol"), f"ports[{i}].protocol", PROTOCOLS)
    if old is not None and old.get("addressType") != obj.get("addressType"):
        errs.append(invalid("addressType", address_type, IMMUTABLE))
    return errs


def validate_endpoints(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    for i, subset in enumerate(as_dicts(obj.get("subsets"))):
        for j, port in enumerate(as_dicts(subset.get("ports"))):
            errs += port_number(port.get("port", 0), f"subsets[{i}].ports[{j}].port")
            errs += required_one_of(port.get("protocol"), f"subsets[{i}].ports[{j}].protocol", PROTOCOLS)
    return errs
