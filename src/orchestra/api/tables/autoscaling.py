"""Row printer for HorizontalPodAutoscalers (printHorizontalPodAutoscaler and formatHPAMetrics of
kube 1.32's pkg/printers/internalversion): NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE.

Owns: the cells, and `format_hpa_metrics` — TARGETS, metric by metric: a resource metric with its
name (`cpu: 12%/50%`, `memory: 40Mi/100Mi`, `cpu: <unknown>/50%` before the first measurement),
pods and object metrics as `current/target`, averages marked `(avg)`, at most two and then
`+ N more...`. Kube prints the internal object, so an autoscaling/v1 object is read as the v2 one
it stands for (api/conversion/).
Must not import: the other printers, the column definitions, or the Table envelope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.api.conversion import hpa
from orchestra.api.tables.format import Cell, int_or_zero, since
from orchestra.objects import Obj, as_dict, as_dicts
from orchestra.objects.quantity import QuantityError, format_quantity

MAX_SHOWN = 2
UNKNOWN = "<unknown>"


def _q(value: Any) -> str:
    """A *resource.Quantity as %s prints it: `<nil>` when absent."""
    if value is None:
        return "<nil>"
    try:
        return format_quantity(value)
    except QuantityError:
        return str(value)


def _status(statuses: list[Obj], i: int, source: str) -> Obj | None:
    """statuses[i].<source> when the status list reaches that far and has it."""
    if i < len(statuses) and statuses[i].get(source) is not None:
        return as_dict(statuses[i][source])
    return None


def _average_or_value(spec: Obj, status: Obj | None) -> str:
    """Object and External metrics: an average target shows `(avg)`."""
    target = as_dict(spec.get("target"))
    current = as_dict(as_dict(status).get("current"))
    if target.get("averageValue") is not None:
        shown = (
            _q(current["averageValue"])
            if status is not None and current.get("averageValue") is not None
            else UNKNOWN
        )
        return f"{shown}/{_q(target['averageValue'])} (avg)"
    shown = _q(current.get("value")) if status is not None else UNKNOWN
    return f"{shown}/{_q(target.get('value'))}"


def _resource(spec: Obj, status: Obj | None) -> str:
    target, current = as_dict(spec.get("target")), as_dict(as_dict(status).get("current"))
    name = str(spec.get("name") or "")
    if target.get("averageValue") is not None:
        shown = _q(current.get("averageValue")) if status is not None else UNKNOWN
        return f"{name}: {shown}/{_q(target['averageValue'])}"
    shown = f"{current['averageUtilization']}%" if current.get("averageUtilization") is not None else UNKNOWN
    wanted = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
    return f"{name}: {shown}/{wanted}"


def _one(spec: Obj, statuses: list[Obj], i: int) -> str:
    mtype = spec.get("type")
    if mtype == "External":
        return _average_or_value(as_dict(spec.get("external")), _status(statuses, i, "external"))
    if mtype == "Object":
        return _average_or_value(as_dict(spec.get("object")), _status(statuses, i, "object"))
    if mtype == "Pods":
        status = _status(statuses, i, "pods")
        shown = _q(as_dict(status.get("current")).get("averageValue")) if status is not None else UNKNOWN
        return f"{shown}/{_q(as_dict(as_dict(spec.get('pods')).get('target')).get('averageValue'))}"
    if mtype == "Resource":
        return _resource(as_dict(spec.get("resource")), _status(statuses, i, "resource"))
    if mtype == "ContainerResource":
        return _resource(as_dict(spec.get("containerResource")), _status(statuses, i, "containerResource"))
    return "<unknown type>"


def format_hpa_metrics(specs: Any, statuses: Any) -> str:
    """formatHPAMetrics: the TARGETS cell."""
    specs, current = as_dicts(specs), as_dicts(statuses)
    if not specs:
        return "<none>"
    shown = [_one(spec, current, i) for i, spec in enumerate(specs)]
    text = ", ".join(shown[:MAX_SHOWN])
    return f"{text} + {len(shown) - MAX_SHOWN} more..." if len(shown) > MAX_SHOWN else text


def print_hpa(obj: Obj, now: datetime) -> list[Cell]:
    if obj.get("apiVersion") == "autoscaling/v1":
        obj = hpa.to_v2(obj)
    m, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    ref = as_dict(spec.get("scaleTargetRef"))
    min_pods = spec.get("minReplicas")
    return [
        str(m.get("name", "")),
        f"{ref.get('kind') or ''}/{ref.get('name') or ''}",
        format_hpa_metrics(spec.get("metrics"), status.get("currentMetrics")),
        str(min_pods) if min_pods is not None else "<unset>",
        int_or_zero(spec.get("maxReplicas")),
        int_or_zero(status.get("currentReplicas")),
        since(m.get("creationTimestamp"), now),
    ]
