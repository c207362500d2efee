"""autoscaling/v2 HorizontalPodAutoscaler: kube 1.32's ValidateHorizontalPodAutoscaler and
ValidateHorizontalPodAutoscalerUpdate (pkg/apis/autoscaling/validation), run on the stored (v2)
object whatever version the request used, so field paths are v2's (an autoscaling/v1
targetCPUUtilizationPercentage of 0 is `spec.metrics[0].resource.target.averageUtilization`).

Owns: the object meta (a DNS subdomain name), minReplicas (>= 1; 0 only with the HPAScaleToZero
feature gate — off by default, so only for an object that already has 0), maxReplicas, the
scale target reference, every metric source (types, targets, identifiers), the behavior's scaling
rules and policies, and the status counts (non-negative).
Must not import: the other kinds' validators or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    NEGATIVE,
    forbidden,
    invalid,
    is_int,
    not_supported,
    required,
)
from orchestra.api.machinery.names import is_dns1123_label, is_dns1123_subdomain, is_qualified_name
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.api.policy.validation.policy import is_path_segment_name
from orchestra.objects import Obj, as_dict, as_dicts
from orchestra.objects.quantity import QuantityError, parse_quantity

HPA_SCALE_TO_ZERO = False  # kube's HPAScaleToZero feature gate (alpha, off by default)
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
METRIC_SOURCE_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")  # sorted, as sets.List
SELECT_POLICIES = ("Disabled", "Max", "Min")
POLICY_TYPES = ("Percent", "Pods")
TARGET_TYPES = ("Utilization", "Value", "AverageValue")
_SOURCE_FIELDS = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def validate_hpa(obj: Obj, old: Obj | None) -> list[Cause]:
    """Create and update (the status subresource also runs through here: its spec is the old one)."""
    spec = as_dict(obj.get("spec"))
    old_min = as_dict(as_dict(old).get("spec")).get("minReplicas") if old is not None else None
    lower = 0 if HPA_SCALE_TO_ZERO or old_min == 0 else 1
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += validate_hpa_spec(spec, "spec", lower)
    status = as_dict(obj.get("status"))
    for field in ("currentReplicas", "desiredReplicas"):  # ValidateNonnegativeField
        value = status.get(field)
        if is_int(value) and value < 0:
            errs.append(invalid(f"status.{field}", value, NEGATIVE))
    return errs


def validate_hpa_spec(spec: Obj, path: str, lower: int) -> list[Cause]:
    errs: list[Cause] = []
    low, high = spec.get("minReplicas"), spec.get("maxReplicas") or 0
    if is_int(low) and low < lower:
        errs.append(invalid(f"{path}.minReplicas", low, f"must be greater than or equal to {lower}"))
    if is_int(high) and high < 1:
        errs.append(invalid(f"{path}.maxReplicas", high, "must be greater than 0"))
    if is_int(low) and is_int(high) and high < low:
        errs.append(invalid(f"{path}.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    errs += validate_cross_version_ref(spec.get("scaleTargetRef"), f"{path}.scaleTargetRef")
    errs += _metrics(spec.get("metrics"), f"{path}.metrics", low)
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for direction in ("scaleUp", "scaleDown"):
            if isinstance(behavior.get(direction), dict):
                errs += _scaling_rules(behavior[direction], f"{path}.behavior.{direction}")
    return errs


def validate_cross_version_ref(ref: Any, path: str) -> list[Cause]:
    ref = as_dict(ref)
    errs: list[Cause] = []
    for field in ("kind", "name"):
        value = str(ref.get(field) or "")
        if not value:
            errs.append(required(f"{path}.{field}"))
        else:
            errs += [invalid(f"{path}.{field}", value, m) for m in is_path_segment_name(value)]
    return errs


def _metrics(metrics: Any, path: str, min_replicas: Any) -> list[Cause]:
    errs: list[Cause] = []
    types = set()
    for i, metric in enumerate(as_dicts(metrics)):
        errs += _metric_spec(metric, f"{path}[{i}]")
        types.add(metric.get("type"))
    if min_replicas == 0 and not types & {"Object", "External"}:
        errs.append(
            forbidden(
                path,
                "must specify at least one Object or External metric to support scaling to zero replicas",
            )
        )
    return errs


_SOURCE_VALIDATORS: dict[str, Any] = {}  # filled in below, after the per-source functions


def _metric_spec(metric: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    mtype = str(metric.get("type") or "")
    if not mtype:
        errs.append(required(f"{path}.type", "must specify a metric source type"))
    if mtype not in METRIC_SOURCE_TYPES:
        errs.append(not_supported(f"{path}.type", mtype, METRIC_SOURCE_TYPES))
    present: list[str] = []
    for field in ("object", "external", "pods", "resource", "containerResource"):  # kube's order
        if metric.get(field) is not None:
            present.append(field)
            if len(present) == 1:
                errs += _SOURCE_VALIDATORS[field](as_dict(metric[field]), f"{path}.{field}")
    expected = _SOURCE_FIELDS.get(mtype)
    if expected is None:
        errs.append(not_supported(f"{path}.type", mtype, METRIC_SOURCE_TYPES))  # kube reports it twice
    elif metric.get(expected) is None:
        errs.append(required(f"{path}.{expected}", "must populate information for the given metric source"))
    if len(present) != 1:
        errs += [
            forbidden(f"{path}.{f}", "must populate the given metric source only")
            for f in present
            if f != expected
        ]
    return errs


def _quantity_sign(value: Any) -> int | None:
    try:
        q = parse_quantity(value)
    except QuantityError:
        return None  # the schema check reported it
    return (q > 0) - (q < 0)


def _target(target: Obj, path: str) -> list[Cause]:
    """validateMetricTarget."""
    errs: list[Cause] = []
    ttype = str(target.get("type") or "")
    if not ttype:
        errs.append(required(f"{path}.type", "must specify a metric target type"))
    if ttype not in TARGET_TYPES:
        errs.append(invalid(f"{path}.type", ttype, "must be either Utilization, Value, or AverageValue"))
    for field in ("value", "averageValue"):
        if target.get(field) is not None and _quantity_sign(target[field]) not in (1, None):
            errs.append(invalid(f"{path}.{field}", str(target[field]), "must be positive"))
    utilization = target.get("averageUtilization")
    if is_int(utilization) and utilization < 1:
        errs.append(invalid(f"{path}.averageUtilization", utilization, "must be greater than 0"))
    return errs


def _identifier(metric: Any, path: str) -> list[Cause]:
    name = str(as_dict(metric).get("name") or "")
    if not name:
        return [required(f"{path}.name", "must specify a metric name")]
    return [invalid(f"{path}.name", name, m) for m in is_path_segment_name(name)]


def _object_source(src: Obj, path: str) -> list[Cause]:
    target = as_dict(src.get("target"))
    errs = validate_cross_version_ref(src.get("describedObject"), f"{path}.describedObject")
    errs += _identifier(src.get("metric"), f"{path}.metric") + _target(target, f"{path}.target")
    if target.get("value") is None and target.get("averageValue") is None:
        errs.append(required(f"{path}.target.averageValue", "must set either a target value or averageValue"))
    return errs


def _external_source(src: Obj, path: str) -> list[Cause]:
    target = as_dict(src.get("target"))
    errs = _identifier(src.get("metric"), f"{path}.metric") + _target(target, f"{path}.target")
    if target.get("value") is None and target.get("averageValue") is None:
        errs.append(
            required(
                f"{path}.target.averageValue", "must set either a target value for metric or a per-pod target"
            )
        )
    if target.get("value") is not None and target.get("averageValue") is not None:
        errs.append(
            forbidden(
                f"{path}.target.value", "may not set both a target value for metric and a per-pod target"
            )
        )
    return errs


def _pods_source(src: Obj, path: str) -> list[Cause]:
    target = as_dict(src.get("target"))
    errs = _identifier(src.get("metric"), f"{path}.metric") + _target(target, f"{path}.target")
    if target.get("averageValue") is None:
        errs.append(required(f"{path}.target.averageValue", "must specify a positive target averageValue"))
    return errs


def _utilization_or_value(target: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if target.get("averageUtilization") is None and target.get("averageValue") is None:
        errs.append(
            required(
                f"{path}.averageUtilization", "must set either a target raw value or a target utilization"
            )
        )
    if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
        errs.append(
            forbidden(f"{path}.averageValue", "may not set both a target raw value and a target utilization")
        )
    return errs


def _resource_source(src: Obj, path: str) -> list[Cause]:
    target = as_dict(src.get("target"))
    errs = [] if src.get("name") else [required(f"{path}.name", "must specify a resource name")]
    return errs + _target(target, f"{path}.target") + _utilization_or_value(target, f"{path}.target")


def _container_resource_name(name: str, path: str) -> list[Cause]:
    """ValidateContainerResourceName."""
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif "kubernetes.io/" not in name and (name.startswith("requests.") or "." not in name.split("/")[0]):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def _container_resource_source(src: Obj, path: str) -> list[Cause]:
    target = as_dict(src.get("target"))
    name, container = str(src.get("name") or ""), str(src.get("container") or "")
    errs = (
        _container_resource_name(name, f"{path}.name")
        if name
        else [required(f"{path}.name", "must specify a resource name")]
    )
    if not container:
        errs.append(required(f"{path}.container", "must specify a container"))
    else:
        errs += [invalid(f"{path}.container", container, m) for m in is_dns1123_label(container)]
    return errs + _target(target, f"{path}.target") + _utilization_or_value(target, f"{path}.target")


_SOURCE_VALIDATORS.update(
    object=_object_source,
    external=_external_source,
    pods=_pods_source,
    resource=_resource_source,
    containerResource=_container_resource_source,
)


def _scaling_rules(rules: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    window = rules.get("stabilizationWindowSeconds")
    if is_int(window) and window < 0:
        errs.append(
            invalid(f"{path}.stabilizationWindowSeconds", window, "must be greater than or equal to zero")
        )
    if is_int(window) and window > MAX_STABILIZATION_WINDOW_SECONDS:
        errs.append(
            invalid(
                f"{path}.stabilizationWindowSeconds",
                window,
                f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}",
            )
        )
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        errs.append(not_supported(f"{path}.selectPolicy", select, SELECT_POLICIES))
    policies = as_dicts(rules.get("policies"))
    if not policies:
        errs.append(required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(policies):
        errs += _scaling_policy(policy, f"{path}.policies[{i}]")
    return errs


def _scaling_policy(policy: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if policy.get("type") not in POLICY_TYPES:
        errs.append(not_supported(f"{path}.type", str(policy.get("type") or ""), POLICY_TYPES))
    value, period = policy.get("value") or 0, policy.get("periodSeconds") or 0
    if is_int(value) and value <= 0:
        errs.append(invalid(f"{path}.value", value, "must be greater than zero"))
    if is_int(period) and period <= 0:
        errs.append(invalid(f"{path}.periodSeconds", period, "must be greater than zero"))
    if is_int(period) and period > MAX_PERIOD_SECONDS:
        errs.append(
            invalid(f"{path}.periodSeconds", period, f"must be less than or equal to {MAX_PERIOD_SECONDS}")
        )
    return errs
