"""The meta.k8s.io/v1 Table envelope: rows from the per-kind printers, the row object
(PartialObjectMetadata / full / none), pod row conditions, and the one-row Table of a watch event.

Owns: table, table_row, table_row_event and the kind -> printer dispatch (a type served over
another type's stored objects is printed as the stored object: api/conversion/).
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from orchestra.api import conversion
from orchestra.api.registry import ResourceType
from orchestra.api.tables.apis import (
    print_api_service,
    print_component_status,
    print_pod_template,
    print_replication_controller,
)
from orchestra.api.tables.autoscaling import print_hpa
from orchestra.api.tables.certificates import print_csr
from orchestra.api.tables.columns import column_definitions
from orchestra.api.tables.core import (
    print_configmap,
    print_controller_revision,
    print_endpoints,
    print_endpointslice,
    print_event,
    print_generic,
    print_lease,
    print_namespace,
    print_node,
    print_pdb,
    print_priority_class,
    print_resource_quota,
    print_secret,
    print_service,
    print_serviceaccount,
)
from orchestra.api.tables.custom import custom_cells, custom_columns
from orchestra.api.tables.format import Cell
from orchestra.api.tables.networking import print_ingress, print_ingress_class, print_network_policy
from orchestra.api.tables.pods import print_pod
from orchestra.api.tables.rbac import print_binding
from orchestra.api.tables.storage import print_pv, print_pvc, print_storage_class
from orchestra.api.tables.workloads import (
    print_cronjob,
    print_daemonset,
    print_deployment,
    print_job,
    print_replicaset,
    print_statefulset,
)
from orchestra.objects import Obj, as_dict

_PRINTERS: dict[str, Callable[[Obj, datetime], list[Cell]]] = {
    "Pod": print_pod,
    "Deployment": print_deployment,
    "ReplicaSet": print_replicaset,
    "DaemonSet": print_daemonset,
    "StatefulSet": print_statefulset,
    "Job": print_job,
    "CronJob": print_cronjob,
    "Service": print_service,
    "Endpoints": print_endpoints,
    "EndpointSlice": print_endpointslice,
    "Node": print_node,
    "Namespace": print_namespace,
    "Event": print_event,
    "ConfigMap": print_configmap,
    "Secret": print_secret,
    "ServiceAccount": print_serviceaccount,
    "Lease": print_lease,
    "PriorityClass": print_priority_class,
    "ControllerRevision": print_controller_revision,
    "PodDisruptionBudget": print_pdb,
    "PersistentVolume": print_pv,
    "PersistentVolumeClaim": print_pvc,
    "StorageClass": print_storage_class,
    "ReplicationController": print_replication_controller,
    "PodTemplate": print_pod_template,
    "ComponentStatus": print_component_status,
    "APIService": print_api_service,
    "Ingress": print_ingress,
    "IngressClass": print_ingress_class,
    "NetworkPolicy": print_network_policy,
    "HorizontalPodAutoscaler": print_hpa,
    "ResourceQuota": print_resource_quota,
    "RoleBinding": print_binding,
    "ClusterRoleBinding": print_binding,
    "CertificateSigningRequest": print_csr,
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
    if rt.custom is not None:
        row: Obj = {"cells": custom_cells(rt, obj, now)}
    else:
        # kube prints the internal object: a type served over another's objects prints the stored form
        printed = conversion.stored(rt, obj) if rt.stored_as else obj
        row = {"cells": _PRINTERS.get(rt.kind, print_generic)(printed, now)}
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
        "columnDefinitions": custom_columns(rt) if rt.custom is not None else column_definitions(rt),
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
