"""Semantic validation of the built-in kinds, worded exactly like kube-apiserver 1.32.

Owns: `validate(kind, obj, old) -> list[Cause]` — the `ValidateX`/`ValidateXUpdate` rules of
k8s.io/kubernetes/pkg/apis/*/validation, with kube's field paths (`spec.containers[0].image`) and
messages (`Required value`, `Invalid value: "x": ...`, `Unsupported value: ...`). Runs on defaulted
objects. Immutability of metadata.name/namespace/uid is the core's job, not this package's.
This module is the package's public surface and the kind -> validator dispatch; the rules live in
field (cause constructors), names, meta (object meta, selectors), container, pod, workloads (apps/v1),
jobs and cron (batch/v1), service (Service, Endpoints, EndpointSlice), policy (PodDisruptionBudget),
storage (PersistentVolumeClaim, PersistentVolume, StorageClass) and config (the other kinds);
networking (Ingress, IngressClass).
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.validation.config import (
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
from orchestra.api.validation.cron import cron_error
from orchestra.api.validation.field import (
    DUPLICATE,
    FORBIDDEN,
    IMMUTABLE,
    INVALID,
    NEGATIVE,
    NOT_FOUND,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    GoRepr,
    NameFn,
    duplicate,
    forbidden,
    go_label_selector,
    go_quote,
    go_string_map,
    go_value,
    invalid,
    not_found,
    not_supported,
    required,
    too_long,
)
from orchestra.api.validation.jobs import validate_cronjob, validate_job
from orchestra.api.validation.meta import (
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
)
from orchestra.api.validation.names import (
    CONFIG_KEY_FMT,
    CONFIG_KEY_MSG,
    DNS1035_LABEL_FMT,
    DNS1035_LABEL_MSG,
    DNS1123_LABEL_FMT,
    DNS1123_LABEL_MSG,
    DNS1123_SUBDOMAIN_FMT,
    DNS1123_SUBDOMAIN_MSG,
    LABEL_VALUE_FMT,
    LABEL_VALUE_MSG,
    PERCENT_FMT,
    PORT_RANGE_MSG,
    QNAME_ERR,
    QNAME_FMT,
    is_config_map_key,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    is_valid_port_name,
    max_len_error,
    regex_error,
)
from orchestra.api.validation.networking import validate_ingress, validate_ingress_class
from orchestra.api.validation.pod import (
    POD_UPDATE_MSG,
    validate_pod,
    validate_pod_spec,
    validate_pod_template,
)
from orchestra.api.validation.policy import validate_pdb
from orchestra.api.validation.service import (
    NODE_PORT_RANGE,
    validate_endpoints,
    validate_endpointslice,
    validate_service,
)
from orchestra.api.validation.storage import (
    PVC_IMMUTABLE_MSG,
    validate_pv,
    validate_pvc,
    validate_pvc_spec,
    validate_storage_class,
)
from orchestra.api.validation.workloads import (
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
}


def validate(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Every semantic problem with `obj` (a defaulted object), in kube's order; [] when valid."""
    check = _BY_KIND.get(kind, validate_generic)
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
    "CONFIG_KEY_FMT",
    "CONFIG_KEY_MSG",
    "DNS1035_LABEL_FMT",
    "DNS1035_LABEL_MSG",
    "DNS1123_LABEL_FMT",
    "DNS1123_LABEL_MSG",
    "DNS1123_SUBDOMAIN_FMT",
    "DNS1123_SUBDOMAIN_MSG",
    "DUPLICATE",
    "FORBIDDEN",
    "IMMUTABLE",
    "INVALID",
    "LABEL_VALUE_FMT",
    "LABEL_VALUE_MSG",
    "NEGATIVE",
    "NODE_PORT_RANGE",
    "NOT_FOUND",
    "NOT_SUPPORTED",
    "PERCENT_FMT",
    "POD_UPDATE_MSG",
    "PORT_RANGE_MSG",
    "PVC_IMMUTABLE_MSG",
    "QNAME_ERR",
    "QNAME_FMT",
    "REQUIRED",
    "TOO_LONG",
    "GoRepr",
    "NameFn",
    "Obj",
    "cron_error",
    "duplicate",
    "forbidden",
    "go_label_selector",
    "go_quote",
    "go_string_map",
    "go_value",
    "invalid",
    "is_config_map_key",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "is_valid_label_value",
    "is_valid_port_name",
    "max_len_error",
    "not_found",
    "not_supported",
    "regex_error",
    "required",
    "selector_matches",
    "too_long",
    "validate",
    "validate_annotations",
    "validate_label_selector",
    "validate_labels",
    "validate_object_meta",
    "validate_pod_spec",
    "validate_pod_template",
    "validate_pvc_spec",
]
