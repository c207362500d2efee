"""The meta.k8s.io/v1 Table envelope: rows from the per-kind printers, the row object
(PartialObjectMetadata / full / none), pod row conditions, and the one-row Table of a watch event.

Owns: table, table_row, table_row_event and the kind -> printer dispatch.
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from orchestra.api.registry import ResourceType
from orchestra.api.tables.columns import column_definitions
from orchestra.api.tables.core import (
    _print_configmap,
    _print_controller_revision,
    _print_endpoints,
    _print_endpointslice,
    _print_event,
    _print_generic,
    _print_lease,
    _print_namespace,
    _print_node,
    _print_pdb,
    _print_priority_class,
    _print_secret,
    _print_service,
    _print_serviceaccount,
)
from orchestra.api.tables.format import Cell
from orchestra.api.tables.pods import _print_pod
from orchestra.api.tables.storage import _print_pv, _print_pvc, _print_storage_class
from orchestra.api.tables.workloads import (
    _print_cronjob,
    _print_daemonset,
    _print_deployment,
    _print_job,
    _print_replicaset,
    _print_statefulset,
)
from orchestra.objects import Obj, as_dict

_PRINTERS: dict[str, Callable[[Obj, datetime], list[Cell]]] = {
    "Pod": _print_pod,
    "Deployment": _print_deployment,
    "ReplicaSet": _print_replicaset,
    "DaemonSet": _print_daemonset,
    "StatefulSet": _print_statefulset,
    "Job": _print_job,
    "CronJob": _print_cronjob,
    "Service": _print_service,
    "Endpoints": _print_endpoints,
    "EndpointSlice": _print_endpointslice,
    "Node": _print_node,
    "Namespace": _print_namespace,
    "Event": _print_event,
    "ConfigMap": _print_configmap,
    "Secret": _print_secret,
    "ServiceAccount": _print_serviceaccount,
    "Lease": _print_lease,
    "PriorityClass": _print_priority_class,
    "ControllerRevision": _print_controller_revision,
    "PodDisruptionBudget": _print_pdb,
    "PersistentVolume": _print_pv,
    "PersistentVolumeClaim": _print_pvc,
    "StorageClass": _print_storage_class,
}

_POD_CONDITIONS = {
    "Succeeded": [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ],
    "Failed": [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}],
}


# --- the Table envelope ------------------------------------------------------------------------------


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    metadata = {k: v for k, v in as_dict(obj.get("metadata")).items() if k != "managedFields"}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}


def table_row(rt: ResourceType, obj: Obj, *, now: datetime, include_object: str = "Metadata") -> Obj:
    """One `rows[]` entry: cells (all columns, wide ones included), object, and pod conditions."""
    row: Obj = {"cells": _PRINTERS.get(rt.kind, _print_generic)(obj, now)}
    if rt.kind == "Pod":
        conditions = _POD_CONDITIONS.get(str(as_dict(obj.get("status")).get("phase")))
        if conditions:
            row["conditions"] = [dict(c) for c in conditions]
    row_object = _row_object(obj, include_object)
    if row_object is not None:
        row["object"] = row_object
    return row


def table(
    rt: ResourceType,
    objs: list[dict[str, Any]],
    *,
    now: datetime,
    include_object: str = "Metadata",
    resource_version: str = "",
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table for `objs` (a list, or a single object as a one-element list)."""
    if not resource_version and len(objs) == 1:
        resource_version = str(as_dict(objs[0].get("metadata")).get("resourceVersion") or "")
    metadata = {"resourceVersion": resource_version} if resource_version else {}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(rt),
        "rows": [table_row(rt, o, now=now, include_object=include_object) for o in objs],
    }


def table_row_event(
    rt: ResourceType,
    obj: dict[str, Any],
    *,
    now: datetime,
    include_object: str = "Metadata",
    resource_version: str = "",
) -> dict[str, Any]:
    """The object of a watch event under the Table Accept: a Table with exactly one row."""
    return table(rt, [obj], now=now, include_object=include_object, resource_version=resource_version)
