"""Row printers for the kinds kubectl probes beside the workloads: ReplicationController,
PodTemplate, ComponentStatus and APIService (kube-aggregator's table convertor). events.k8s.io/v1
Events are printed as the core/v1 Events they are stored as (envelope.py), as kube's one internal
printer does.

Owns: the cells of those kinds.
Must not import: the other printers, the column definitions, or the Table envelope.
"""

from __future__ import annotations

from datetime import datetime

from orchestra.api.tables.format import Cell, format_labels, int_or_zero, layout_containers, since
from orchestra.objects import Obj, as_dict, only_dicts


def print_replication_controller(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    names, images = layout_containers(as_dict(as_dict(spec.get("template")).get("spec")))
    return [
        str(meta.get("name", "")),
        int_or_zero(spec.get("replicas")),
        int_or_zero(status.get("replicas")),
        int_or_zero(status.get("readyReplicas")),
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_labels(spec.get("selector")),
    ]


def print_pod_template(obj: Obj, now: datetime) -> list[Cell]:
    template = as_dict(obj.get("template"))
    names, images = layout_containers(as_dict(template.get("spec")))
    labels = as_dict(template.get("metadata")).get("labels")
    return [str(as_dict(obj.get("metadata")).get("name", "")), names, images, format_labels(labels)]


def print_component_status(obj: Obj, now: datetime) -> list[Cell]:
    status, message, error = "Unknown", "", ""
    for condition in only_dicts(obj.get("conditions")):
        if condition.get("type") == "Healthy":
            status = "Healthy" if condition.get("status") == "True" else "Unhealthy"
            message, error = str(condition.get("message") or ""), str(condition.get("error") or "")
            break
    return [str(as_dict(obj.get("metadata")).get("name", "")), status, message, error]


def print_api_service(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
    ref = spec.get("service")
    service = f"{as_dict(ref).get('namespace', '')}/{as_dict(ref).get('name', '')}" if ref else "Local"
    available = "Unknown"
    for condition in only_dicts(as_dict(obj.get("status")).get("conditions")):
        if condition.get("type") == "Available":
            available = str(condition.get("status") or "")
            if available != "True" and condition.get("reason"):
                available = f"{available} ({condition['reason']})"
            break
    return [str(meta.get("name", "")), service, available, since(meta.get("creationTimestamp"), now)]
