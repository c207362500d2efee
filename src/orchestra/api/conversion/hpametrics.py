"""Metric specs and statuses of HorizontalPodAutoscalers between autoscaling/v2 and the
autoscaling/v1 shapes kube keeps in v1's round-trip annotations (pkg/apis/autoscaling/v1
conversion.go: Convert_*MetricSource*/Convert_*MetricStatus*).

Owns: `spec_to_v1`, `spec_to_v2`, `status_to_v1`, `status_to_v2` on JSON dicts, keys in the order
of kube's Go structs (the annotations are `json.Marshal` of them), every metric source type
(Object, Pods, Resource, ContainerResource, External) each way. A non-pointer Go quantity that is
absent marshals as "0"; pointers that are absent are left out.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from typing import Any

from orchestra.objects import Obj, as_dict
from orchestra.objects.quantity import QuantityError, format_quantity

SOURCES = ("object", "pods", "resource", "containerResource", "external")


def quantity(value: Any) -> Any:
    """A quantity as Go marshals it: canonical (`0.5` -> `500m`), and "0" for the zero value."""
    if value is None:
        return "0"
    try:
        return format_quantity(value)
    except QuantityError:
        return value  # not a quantity: validation refuses it where it matters; keep it as sent


def _put(out: Obj, key: str, value: Any, *, as_quantity: bool = False) -> None:
    """Set an optional (Go pointer, omitempty) field when it has a value."""
    if value is not None:
        out[key] = quantity(value) if as_quantity else value


def ref(value: Any) -> Obj:
    """A CrossVersionObjectReference (kind, name, apiVersion when set)."""
    r = as_dict(value)
    out: Obj = {"kind": r.get("kind") or "", "name": r.get("name") or ""}
    _put(out, "apiVersion", r.get("apiVersion") or None)
    return out


def _identifier(name: Any, selector: Any) -> Obj:
    out: Obj = {"name": name or ""}
    _put(out, "selector", selector)
    return out


def _by_type(metric: Any, convert: dict[str, Any]) -> Obj:
    m = as_dict(metric)
    out: Obj = {"type": m.get("type") or ""}
    for source in SOURCES:
        value = m.get(source)
        if value is not None:
            out[source] = convert[source](as_dict(value))
    return out


# --- specs: v2 -> v1 ---------------------------------------------------------------------------------


def _object_v1(src: Obj) -> Obj:
    target, metric = as_dict(src.get("target")), as_dict(src.get("metric"))
    out: Obj = {
        "target": ref(src.get("describedObject")),
        "metricName": metric.get("name") or "",
        "targetValue": quantity(target.get("value")),
    }
    _put(out, "selector", metric.get("selector"))
    _put(out, "averageValue", target.get("averageValue"), as_quantity=True)
    return out


def _pods_v1(src: Obj) -> Obj:
    target, metric = as_dict(src.get("target")), as_dict(src.get("metric"))
    out: Obj = {
        "metricName": metric.get("name") or "",
        "targetAverageValue": quantity(target.get("averageValue")),
    }
    _put(out, "selector", metric.get("selector"))
    return out


def _resource_v1(src: Obj, *, container: bool = False) -> Obj:
    target = as_dict(src.get("target"))
    out: Obj = {"name": src.get("name") or ""}
    _put(out, "targetAverageUtilization", target.get("averageUtilization"))
    _put(out, "targetAverageValue", target.get("averageValue"), as_quantity=True)
    if container:
        out["container"] = src.get("container") or ""
    return out


def _external_v1(src: Obj) -> Obj:
    target, metric = as_dict(src.get("target")), as_dict(src.get("metric"))
    out: Obj = {"metricName": metric.get("name") or ""}
    _put(out, "metricSelector", metric.get("selector"))
    _put(out, "targetValue", target.get("value"), as_quantity=True)
    _put(out, "targetAverageValue", target.get("averageValue"), as_quantity=True)
    return out


_SPEC_V1 = {
    "object": _object_v1,
    "pods": _pods_v1,
    "resource": _resource_v1,
    "containerResource": lambda s: _resource_v1(s, container=True),
    "external": _external_v1,
}


def spec_to_v1(metric: Any) -> Obj:
    return _by_type(metric, _SPEC_V1)


# --- specs: v1 -> v2 ---------------------------------------------------------------------------------


def _target(type_: str, **fields: Any) -> Obj:
    out: Obj = {"type": type_}
    for key in ("value", "averageValue", "averageUtilization"):
        _put(out, key, fields.get(key), as_quantity=key != "averageUtilization")
    return out


def _object_v2(src: Obj) -> Obj:
    average = src.get("averageValue")
    return {
        "describedObject": ref(src.get("target")),
        "target": _target(
            "Value" if average is None else "AverageValue",
            value=quantity(src.get("targetValue")),
            averageValue=average,
        ),
        "metric": _identifier(src.get("metricName"), src.get("selector")),
    }


def _pods_v2(src: Obj) -> Obj:
    return {
        "metric": _identifier(src.get("metricName"), src.get("selector")),
        "target": _target("AverageValue", averageValue=quantity(src.get("targetAverageValue"))),
    }


def _resource_v2(src: Obj, *, container: bool = False) -> Obj:
    utilization = src.get("targetAverageUtilization")
    out: Obj = {
        "name": src.get("name") or "",
        "target": _target(
            "AverageValue" if utilization is None else "Utilization",
            averageValue=src.get("targetAverageValue"),
            averageUtilization=utilization,
        ),
    }
    if container:
        out["container"] = src.get("container") or ""
    return out


def _external_v2(src: Obj) -> Obj:
    value = src.get("targetValue")
    return {
        "metric": _identifier(src.get("metricName"), src.get("metricSelector")),
        "target": _target(
            "AverageValue" if value is None else "Value",
            value=value,
            averageValue=src.get("targetAverageValue"),
        ),
    }


_SPEC_V2 = {
    "object": _object_v2,
    "pods": _pods_v2,
    "resource": _resource_v2,
    "containerResource": lambda s: _resource_v2(s, container=True),
    "external": _external_v2,
}


def spec_to_v2(metric: Any) -> Obj:
    return _by_type(metric, _SPEC_V2)


# --- statuses: v2 -> v1 ------------------------------------------------------------------------------


def _object_status_v1(src: Obj) -> Obj:
    current, metric = as_dict(src.get("current")), as_dict(src.get("metric"))
    out: Obj = {
        "target": ref(src.get("describedObject")),
        "metricName": metric.get("name") or "",
        "currentValue": quantity(current.get("value")),
    }
    _put(out, "selector", metric.get("selector"))
    _put(out, "averageValue", current.get("averageValue"), as_quantity=True)
    return out


def _pods_status_v1(src: Obj) -> Obj:
    current, metric = as_dict(src.get("current")), as_dict(src.get("metric"))
    out: Obj = {
        "metricName": metric.get("name") or "",
        "currentAverageValue": quantity(current.get("averageValue")),
    }
    _put(out, "selector", metric.get("selector"))
    return out


def _resource_status_v1(src: Obj, *, container: bool = False) -> Obj:
    current = as_dict(src.get("current"))
    out: Obj = {"name": src.get("name") or ""}
    _put(out, "currentAverageUtilization", current.get("averageUtilization"))
    out["currentAverageValue"] = quantity(current.get("averageValue"))
    if container:
        out["container"] = src.get("container") or ""
    return out


def _external_status_v1(src: Obj) -> Obj:
    current, metric = as_dict(src.get("current")), as_dict(src.get("metric"))
    out: Obj = {"metricName": metric.get("name") or ""}
    _put(out, "metricSelector", metric.get("selector"))
    out["currentValue"] = quantity(current.get("value"))
    _put(out, "currentAverageValue", current.get("averageValue"), as_quantity=True)
    return out


_STATUS_V1 = {
    "object": _object_status_v1,
    "pods": _pods_status_v1,
    "resource": _resource_status_v1,
    "containerResource": lambda s: _resource_status_v1(s, container=True),
    "external": _external_status_v1,
}


def status_to_v1(metric: Any) -> Obj:
    return _by_type(metric, _STATUS_V1)


# --- statuses: v1 -> v2 ------------------------------------------------------------------------------


def _current(**fields: Any) -> Obj:
    out: Obj = {}
    for key in ("value", "averageValue", "averageUtilization"):
        _put(out, key, fields.get(key), as_quantity=key != "averageUtilization")
    return out


def _object_status_v2(src: Obj) -> Obj:
    return {
        "metric": _identifier(src.get("metricName"), src.get("selector")),
        "current": _current(value=quantity(src.get("currentValue")), averageValue=src.get("averageValue")),
        "describedObject": ref(src.get("target")),
    }


def _pods_status_v2(src: Obj) -> Obj:
    return {
        "metric": _identifier(src.get("metricName"), src.get("selector")),
        "current": _current(averageValue=quantity(src.get("currentAverageValue"))),
    }


def _resource_status_v2(src: Obj, *, container: bool = False) -> Obj:
    out: Obj = {"name": src.get("name") or ""}
    if container:
        out["container"] = src.get("container") or ""
    out["current"] = _current(
        averageValue=quantity(src.get("currentAverageValue")),
        averageUtilization=src.get("currentAverageUtilization"),
    )
    return out


def _external_status_v2(src: Obj) -> Obj:
    return {
        "metric": _identifier(src.get("metricName"), src.get("metricSelector")),
        "current": _current(
            value=quantity(src.get("currentValue")), averageValue=src.get("currentAverageValue")
        ),
    }


_STATUS_V2 = {
    "object": _object_status_v2,
    "pods": _pods_status_v2,
    "resource": _resource_status_v2,
    "containerResource": lambda s: _resource_status_v2(s, container=True),
    "external": _external_status_v2,
}


def status_to_v2(metric: Any) -> Obj:
    return _by_type(metric, _STATUS_V2)
