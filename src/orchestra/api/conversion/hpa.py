"""HorizontalPodAutoscaler between autoscaling/v2 (the stored version) and autoscaling/v1, by kube's
rules (pkg/apis/autoscaling/v1/conversion.go, release 1.32).

autoscaling/v1 holds only `targetCPUUtilizationPercentage` and `currentCPUUtilizationPercentage`;
what else v2 has travels in annotations, so a v1 client that reads, changes and writes back an
object loses nothing:
  * autoscaling.alpha.kubernetes.io/metrics — every metric but the CPU utilization ones, as v1
    MetricSpecs; read back they come first and the CPU one last;
  * autoscaling.alpha.kubernetes.io/current-metrics — every current metric, as v1 MetricStatuses;
  * autoscaling.alpha.kubernetes.io/behavior — spec.behavior as kube marshals its *internal* type:
    no json tags, so Go field names (`ScaleUp`, `StabilizationWindowSeconds`, ...), read back
    case-insensitively as encoding/json does;
  * autoscaling.alpha.kubernetes.io/conditions — status.conditions.
A v1 object without metrics gets kube's implicit default, 80 % CPU utilization. Annotations that
do not decode are ignored. Those four annotations never reach the stored (v2) object: writes at v1
consume them, and v2 drops them on the way in and out (`normalize_v2`), as kube's v2 conversion does.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import json
from typing import Any

from orchestra.api.conversion.hpametrics import ref, spec_to_v1, spec_to_v2, status_to_v1, status_to_v2
from orchestra.objects import Obj, as_dict, as_dicts

METRIC_SPECS = "autoscaling.alpha.kubernetes.io/metrics"
METRIC_STATUSES = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP = (METRIC_SPECS, BEHAVIOR, METRIC_STATUSES, CONDITIONS)
DEFAULT_CPU_UTILIZATION = 80  # autoscaling.DefaultCPUUtilization
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(value: Any) -> str:
    """json.Marshal's text: compact, UTF-8, HTML characters escaped (they only occur inside strings)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def _decoded_list(text: Any) -> list[Any] | None:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None  # kube ignores an annotation it cannot decode
    return value if isinstance(value, list) else None


def _metadata_without_round_trip(obj: Obj) -> Obj:
    m = dict(as_dict(obj.get("metadata")))
    annotations = {k: v for k, v in as_dict(m.get("annotations")).items() if k not in ROUND_TRIP}
    if annotations:
        m["annotations"] = annotations
    else:
        m.pop("annotations", None)  # an empty map is omitted, as Go's omitempty does
    return m


def normalize_v2(obj: Obj) -> Obj:
    """A v2 object without the v1 round-trip annotations (the same object when it has none)."""
    if not any(k in ROUND_TRIP for k in as_dict(as_dict(obj.get("metadata")).get("annotations"))):
        return obj
    return {**obj, "metadata": _metadata_without_round_trip(obj)}


def _is_cpu(metric: Obj) -> bool:
    return metric.get("type") == "Resource" and as_dict(metric.get("resource")).get("name") == "cpu"


def _cpu_utilization(metric: Obj, key: str) -> Any:
    return as_dict(as_dict(metric.get("resource")).get(key)).get("averageUtilization")


# --- v2 -> v1 ----------------------------------------------------------------------------------------


def to_v1(obj: Obj) -> Obj:
    """The autoscaling/v1 view of a stored (v2) object."""
    spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
    metrics, current = as_dicts(spec.get("metrics")), as_dicts(status.get("currentMetrics"))
    conditions = as_dicts(status.get("conditions"))
    m = _metadata_without_round_trip(obj)
    annotations = dict(as_dict(m.get("annotations")))
    other = [spec_to_v1(x) for x in metrics if not (_is_cpu(x) and _cpu_utilization(x, "target") is not None)]
    if other:
        annotations[METRIC_SPECS] = go_json(other)
    if current:
        annotations[METRIC_STATUSES] = go_json([status_to_v1(x) for x in current])
    if spec.get("behavior") is not None:
        annotations[BEHAVIOR] = go_json(_internal_behavior(as_dict(spec.get("behavior"))))
    if conditions:
        annotations[CONDITIONS] = go_json([_condition(c) for c in conditions])
    if annotations:
        m["annotations"] = annotations
    return {
        "kind": obj.get("kind") or "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": _spec_v1(spec, metrics),
        "status": _status_v1(status, current),
    }


def _spec_v1(spec: Obj, metrics: list[Obj]) -> Obj:
    out: Obj = {"scaleTargetRef": ref(spec.get("scaleTargetRef"))}
    if spec.get("minReplicas") is not None:
        out["minReplicas"] = spec["minReplicas"]
    out["maxReplicas"] = spec.get("maxReplicas") or 0
    for metric in metrics:  # the first CPU resource metric decides, whatever its target type
        if _is_cpu(metric):
            if _cpu_utilization(metric, "target") is not None:
                out["targetCPUUtilizationPercentage"] = _cpu_utilization(metric, "target")
            break
    return out


def _status_v1(status: Obj, current: list[Obj]) -> Obj:
    out: Obj = {}
    for key in ("observedGeneration", "lastScaleTime"):
        if status.get(key) is not None:
            out[key] = status[key]
    out["currentReplicas"] = status.get("currentReplicas") or 0
    out["desiredReplicas"] = status.get("desiredReplicas") or 0
    for metric in current:  # no break: the last CPU utilization wins, as in kube
        if _is_cpu(metric) and _cpu_utilization(metric, "current") is not None:
            out["currentCPUUtilizationPercentage"] = _cpu_utilization(metric, "current")
    return out


def _condition(cond: Obj) -> Obj:
    out: Obj = {
        "type": cond.get("type") or "",
        "status": cond.get("status") or "",
        "lastTransitionTime": cond.get("lastTransitionTime"),
    }
    for key in ("reason", "message"):
        if cond.get(key):
            out[key] = cond[key]
    return out


def _internal_behavior(behavior: Obj) -> Obj:
    """json.Marshal of the internal HorizontalPodAutoscalerBehavior: Go field names, nils as null."""

    def rules(value: Any) -> Obj | None:
        if value is None:
            return None
        r = as_dict(value)
        policies = r.get("policies")
        return {
            "StabilizationWindowSeconds": r.get("stabilizationWindowSeconds"),
            "SelectPolicy": r.get("selectPolicy"),
            "Policies": None
            if policies is None
            else [
                {
                    "Type": p.get("type") or "",
                    "Value": p.get("value") or 0,
                    "PeriodSeconds": p.get("periodSeconds") or 0,
                }
                for p in as_dicts(policies)
            ],
        }

    return {"ScaleUp": rules(behavior.get("scaleUp")), "ScaleDown": rules(behavior.get("scaleDown"))}


# --- v1 -> v2 ----------------------------------------------------------------------------------------


def cpu_utilization_metric(percent: Any) -> Obj:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}},
    }


def to_v2(obj: Obj) -> Obj:
    """The stored (v2) object an autoscaling/v1 object stands for."""
    spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
    annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    out_spec: Obj = {"scaleTargetRef": ref(spec.get("scaleTargetRef"))}
    if spec.get("minReplicas") is not None:
        out_spec["minReplicas"] = spec["minReplicas"]
    out_spec["maxReplicas"] = spec.get("maxReplicas") or 0
    metrics = (
        [cpu_utilization_metric(spec["targetCPUUtilizationPercentage"])]
        if spec.get("targetCPUUtilizationPercentage") is not None
        else []
    )
    other = _decoded_list(annotations.get(METRIC_SPECS))
    if other is not None:  # the other metrics first; the CPU one (if any) goes last
        metrics = [spec_to_v2(m) for m in other] + metrics
    out_spec["metrics"] = metrics or [cpu_utilization_metric(DEFAULT_CPU_UTILIZATION)]
    behavior = _behavior(annotations.get(BEHAVIOR))
    if behavior is not None:
        out_spec["behavior"] = behavior
    return {
        "kind": obj.get("kind") or "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": _metadata_without_round_trip(obj),
        "spec": out_spec,
        "status": _status_v2(status, annotations),
    }


def _status_v2(status: Obj, annotations: Obj) -> Obj:
    out: Obj = {}
    for key in ("observedGeneration", "lastScaleTime"):
        if status.get(key) is not None:
            out[key] = status[key]
    if status.get("currentReplicas"):  # omitempty in v2
        out["currentReplicas"] = status["currentReplicas"]
    out["desiredReplicas"] = status.get("desiredReplicas") or 0
    current: list[Obj] | None = None
    if status.get("currentCPUUtilizationPercentage") is not None:
        current = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "current": {"averageUtilization": status["currentCPUUtilizationPercentage"]},
                },
            }
        ]
    raw = _decoded_list(annotations.get(METRIC_STATUSES))
    if raw is not None:  # "ignore any existing status values -- the ones here have more information"
        current = [status_to_v2(m) for m in raw]
    out["currentMetrics"] = current
    conditions = _decoded_list(annotations.get(CONDITIONS))
    if conditions:
        out["conditions"] = [_condition(as_dict(c)) for c in conditions]
    return out


def _field(doc: Obj, name: str) -> Any:
    """A JSON field as encoding/json finds it for a struct field without a tag: exact, else any case."""
    if name in doc:
        return doc[name]
    return next((v for k, v in doc.items() if k.lower() == name.lower()), None)


def _int_or_none(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(value)  # encoding/json would fail to decode the whole annotation


def _rules(value: Any) -> Obj | None:
    if not isinstance(value, dict):
        return None
    out: Obj = {}
    window = _int_or_none(_field(value, "StabilizationWindowSeconds"))
    if window is not None:
        out["stabilizationWindowSeconds"] = window
    select = _field(value, "SelectPolicy")
    if select is not None:
        out["selectPolicy"] = str(select)
    policies = _field(value, "Policies")
    if isinstance(policies, list):
        out["policies"] = [
            {
                "type": str(_field(as_dict(p), "Type") or ""),
                "value": _int_or_none(_field(as_dict(p), "Value")) or 0,
                "periodSeconds": _int_or_none(_field(as_dict(p), "PeriodSeconds")) or 0,
            }
            for p in policies
        ]
    return out


def _behavior(text: Any) -> Obj | None:
    """spec.behavior from the annotation; None when it is absent, does not decode, or is empty."""
    try:
        doc = json.loads(text) if isinstance(text, str) else None
        if not isinstance(doc, dict):
            return None
        up, down = _rules(_field(doc, "ScaleUp")), _rules(_field(doc, "ScaleDown"))
    except ValueError:
        return None  # as kube: an annotation that does not decode is ignored
    if up is None and down is None:
        return None
    out: Obj = {}
    if up is not None:
        out["scaleUp"] = up
    if down is not None:
        out["scaleDown"] = down
    return out
