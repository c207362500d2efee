"""Row printers for the workload kinds: Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob.

Owns: the cells of those kinds (replica counts, job completions and status, cron schedules).
Must not import: the other printers, the column definitions, or the Table envelope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.api.tables.format import (
    Cell,
    format_label_selector,
    format_labels,
    int_or_zero,
    layout_containers,
    selector_string,
    since,
)
from orchestra.objects import Obj, as_dict, human_duration, only_dicts, parse_time


def _template_spec(obj: Obj) -> Obj:
    return as_dict(as_dict(as_dict(obj.get("spec")).get("template")).get("spec"))


def _spec_status(obj: Obj) -> tuple[Obj, Obj]:
    return as_dict(obj.get("spec")), as_dict(obj.get("status"))


def _row(
    obj: Obj, now: datetime, cells: list[Cell], *, selector: str | None, pod_spec: Obj | None = None
) -> list[Cell]:
    """NAME, the kind's own cells, AGE, then the wide columns: CONTAINERS, IMAGES of the pod template
    (`pod_spec`, else spec.template.spec) and SELECTOR (a StatefulSet has none)."""
    meta = as_dict(obj.get("metadata"))
    names, images = layout_containers(_template_spec(obj) if pod_spec is None else pod_spec)
    row: list[Cell] = [str(meta.get("name", "")), *cells, since(meta.get("creationTimestamp"), now)]
    return [*row, names, images] + ([] if selector is None else [selector])


def _ready(spec: Obj, status: Obj) -> str:
    return f"{int_or_zero(status.get('readyReplicas'))}/{int_or_zero(spec.get('replicas'))}"


def print_deployment(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec_status(obj)
    counts = [int_or_zero(status.get(k)) for k in ("updatedReplicas", "availableReplicas")]
    return _row(obj, now, [_ready(spec, status), *counts], selector=selector_string(spec.get("selector")))


def print_replicaset(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec_status(obj)
    cells: list[Cell] = [int_or_zero(spec.get("replicas"))]
    cells += [int_or_zero(status.get(k)) for k in ("replicas", "readyReplicas")]
    return _row(obj, now, cells, selector=format_label_selector(spec.get("selector")))


_DAEMONSET_COUNTS = (
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
)


def print_daemonset(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec_status(obj)
    cells: list[Cell] = [int_or_zero(status.get(k)) for k in _DAEMONSET_COUNTS]
    cells.append(format_labels(_template_spec(obj).get("nodeSelector")))
    return _row(obj, now, cells, selector=format_label_selector(spec.get("selector")))


def print_statefulset(obj: Obj, now: datetime) -> list[Cell]:
    return _row(obj, now, [_ready(*_spec_status(obj))], selector=None)


def _job_status(obj: Obj) -> str:
    conditions = as_dict(obj.get("status")).get("conditions")
    if _first_condition_true(conditions, "Complete"):
        return "Complete"
    if _first_condition_true(conditions, "Failed"):
        return "Failed"
    if as_dict(obj.get("metadata")).get("deletionTimestamp"):
        return "Terminating"
    if _first_condition_true(conditions, "Suspended"):
        return "Suspended"
    if _first_condition_true(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _first_condition_true(conditions: Any, ctype: str) -> bool:
    """hasJobCondition: the first condition of that type decides."""
    for c in only_dicts(conditions):
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


def print_job(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec_status(obj)
    succeeded = int_or_zero(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{int_or_zero(spec.get('completions'))}"
    elif int_or_zero(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {int_or_zero(spec.get('parallelism'))}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or now) - start).total_seconds())
    cells: list[Cell] = [_job_status(obj), completions, duration]
    return _row(obj, now, cells, selector=format_label_selector(spec.get("selector")))


def print_cronjob(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _spec_status(obj)
    last = "<none>" if not status.get("lastScheduleTime") else since(status.get("lastScheduleTime"), now)
    suspend = spec.get("suspend")
    suspend_cell = "<unset>" if suspend is None else ("True" if suspend else "False")
    job_spec = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
    cells: list[Cell] = [
        str(spec.get("schedule", "")),
        str(spec.get("timeZone") if spec.get("timeZone") is not None else "<none>"),
        suspend_cell,
        len(only_dicts(status.get("active"))),
        last,
    ]
    pod_spec = as_dict(as_dict(job_spec.get("template")).get("spec"))
    return _row(obj, now, cells, selector=format_label_selector(job_spec.get("selector")), pod_spec=pod_spec)
