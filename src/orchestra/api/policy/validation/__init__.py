"""Semantic validation of the built-in kinds, worded exactly like kube-apiserver 1.32.

Owns: `validate(kind, obj, old) -> list[Cause]` — the `ValidateX`/`ValidateXUpdate` rules of
k8s.io/kubernetes/pkg/apis/*/validation, with kube's field paths (`spec.containers[0].image`) and
messages (`Required value`, `Invalid value: "x": ...`, `Unsupported value: ...`). Runs on defaulted
objects. Immutability of metadata.name/namespace/uid is the core's job, not this package's.
This module is the package's public surface and the kind -> validator dispatch; the rules live in
meta (object meta, selectors), container, pod, workloads (apps/v1), jobs and cron (batch/v1),
service (Service, Endpoints, EndpointSlice), policy (PodDisruptionBudget), replication
(ReplicationController, PodTemplate), apiregistration (APIService), events (events.k8s.io/v1 Events),
ephemeral (pods/ephemeralcontainers), storage (PersistentVolumeClaim, PersistentVolume,
StorageClass), autoscaling (HorizontalPodAutoscaler), quota (ResourceQuota, LimitRange), networking
(Ingress, IngressClass), netpolicy (NetworkPolicy) and config (the other kinds); the cause
constructors (field.py) and the name rules (names.py) every one of them uses are api/machinery's.
New code here: a kind's ValidateX / ValidateXUpdate in the module of its API group (a new module for
a new group), added to _BY_KIND below; a rule several kinds share in meta.py, container.py or pod.py.
Must not import: api/request, api/tables, the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import INVALID
from orchestra.api.machinery.names import LABEL_VALUE_MSG, max_len_error
from orchestra.api.policy.validation.apiregistration import validate_api_service
from orchestra.api.policy.validation.autoscaling import validate_hpa
from orchestra.api.policy.validation.certificates import validate_csr
from orchestra.api.policy.validation.config import (
    validate_configmap,
    validate_controller_revision,
    validate_event,
    validate_generic,
    validate_lease,
    validate_namespace,
    validate_node,
    validate_priority_class,
    validate_secret,
)
from orchestra.api.policy.validation.cron import cron_error
from orchestra.api.policy.validation.events import validate_event_v1
from orchestra.api.policy.validation.jobs import validate_cronjob, validate_job
from orchestra.api.policy.validation.meta import (
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
)
from orchestra.api.policy.validation.netpolicy import validate_network_policy
from orchestra.api.policy.validation.networking import validate_ingress, validate_ingress_class
from orchestra.api.policy.validation.pod import (
    POD_UPDATE_MSG,
    validate_pod,
    validate_pod_ephemeral_update,
    validate_pod_spec,
    validate_pod_template,
)
from orchestra.api.policy.validation.policy import validate_pdb
from orchestra.api.policy.validation.quota import validate_limit_range, validate_resource_quota
from orchestra.api.policy.validation.rbac import (
    validate_cluster_role,
    validate_cluster_role_binding,
    validate_role,
    validate_role_binding,
)
from orchestra.api.policy.validation.replication import (
    validate_pod_template_kind,
    validate_replication_controller,
)
from orchestra.api.policy.validation.service import (
    NODE_PORT_RANGE,
    validate_endpoints,
    validate_endpointslice,
    validate_service,
)
from orchestra.api.policy.validation.storage import (
    PVC_IMMUTABLE_MSG,
    validate_pv,
    validate_pvc,
    validate_pvc_spec,
    validate_storage_class,
)
from orchestra.api.policy.validation.workloads import (
    validate_daemonset,
    validate_deployment,
    validate_replicaset,
    validate_statefulset,
)
from orchestra.objects import Obj

_BY_KIND: dict[str, Callable[[Obj, Obj | None], list[Cause]]] = {
    "Pod": validate_pod,
    "Deployment": validate_deployment,
    "ReplicaSet": validate_replicaset,
    "ReplicationController": validate_replication_controller,
    "PodTemplate": validate_pod_template_kind,
    "APIService": validate_api_service,
    "DaemonSet": validate_daemonset,
    "StatefulSet": validate_statefulset,
    "Job": validate_job,
    "CronJob": validate_cronjob,
    "Service": validate_service,
    "ConfigMap": validate_configmap,
    "Secret": validate_secret,
    "Namespace": validate_namespace,
    "Node": validate_node,
    "Event": validate_event,
    "Lease": validate_lease,
    "PriorityClass": validate_priority_class,
    "ControllerRevision": validate_controller_revision,
    "PodDisruptionBudget": validate_pdb,
    "EndpointSlice": validate_endpointslice,
    "Endpoints": validate_endpoints,
    "PersistentVolumeClaim": validate_pvc,
    "PersistentVolume": validate_pv,
    "StorageClass": validate_storage_class,
    "Ingress": validate_ingress,
    "IngressClass": validate_ingress_class,
    "NetworkPolicy": validate_network_policy,
    "HorizontalPodAutoscaler": validate_hpa,
    "ResourceQuota": validate_resource_quota,
    "LimitRange": validate_limit_range,
    "CustomResourceDefinition": lambda obj, old: _validate_crd(obj, old),
    "Role": validate_role,
    "ClusterRole": validate_cluster_role,
    "RoleBinding": validate_role_binding,
    "ClusterRoleBinding": validate_cluster_role_binding,
    "CertificateSigningRequest": validate_csr,
}


def _validate_crd(obj: Obj, old: Obj | None) -> list[Cause]:
    # api/policy/crd builds on this package's meta rules: imported on first use, not in a circle
    from orchestra.api.policy.crd.definition import validate_crd

    return validate_crd(obj, old)


# a write through a subresource with its own strategy, or through another version of the kind
_BY_SUBRESOURCE: dict[tuple[str, str], Callable[[Obj, Obj], list[Cause]]] = {
    ("Pod", "ephemeralcontainers"): validate_pod_ephemeral_update,
}
_BY_VERSION: dict[tuple[str, str], Callable[[Obj, Obj | None], list[Cause]]] = {
    ("events.k8s.io/v1", "Event"): validate_event_v1,
}


def validate(kind: str, obj: dict[str, Any], old: dict[str, Any] | None, *, subresource: str = "",
             version: str = "") -> list[Cause]:
    """Every semantic problem with `obj` (a defaulted object), in kube's order; [] when valid.
    `subresource`: the write's (pods/ephemeralcontainers validates only what it may change);
    `version`: the apiVersion it was written in, when that has rules of its own (events.k8s.io/v1)."""
    if old is not None and (kind, subresource) in _BY_SUBRESOURCE:
        return _BY_SUBRESOURCE[(kind, subresource)](obj, old)
    check = _BY_VERSION.get((version, kind)) or _BY_KIND.get(kind, validate_generic)
    causes = check(obj, old)
    if (old is not None and any(_is_selector_value_cause(c) for c in causes)
            and any(_is_selector_value_cause(c) for c in check(old, None))):
        causes = [c for c in causes if not _is_selector_value_cause(c)]
    return causes


_SELECTOR_VALUE = re.compile(r".*\.values\[\d+\]")


def _is_selector_value_cause(cause: Cause) -> bool:
    """A selector requirement value that is not a valid label value. Like kube's
    AllowInvalidLabelValueIn* options, an object stored with such values may keep them on updates
    (they were accepted before these checks existed)."""
    return (cause.reason == INVALID and bool(_SELECTOR_VALUE.fullmatch(cause.field))
            and cause.message.endswith((LABEL_VALUE_MSG, max_len_error(63))))


__all__ = [
    "NODE_PORT_RANGE",
    "POD_UPDATE_MSG",
    "PVC_IMMUTABLE_MSG",
    "cron_error",
    "selector_matches",
    "validate",
    "validate_annotations",
    "validate_label_selector",
    "validate_labels",
    "validate_object_meta",
    "validate_pod_spec",
    "validate_pod_template",
    "validate_pvc_spec",
]
