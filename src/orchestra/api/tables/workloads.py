"""Row printers for the workload kinds: Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob.

Owns: the cells of those kinds (replica counts, job completions and status, cron schedules).
Must not import: the other printers, the column definitions, or the Table envelope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.api.tables.format import (
    Cell,
    _d,
    _int,
    _ld,
    format_label_selector,
    format_labels,
    human_duration,
    layout_containers,
    parse_time,
    selector_string,
    since,
)
from orchestra.objects import Obj


def _template_spec(obj: Obj) -> Obj:
    return _d(_d(_d(obj.get("spec")).get("template")).get("spec"))


def _print_deployment(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    names, images = layout_containers(_template_spec(obj))
    return [
        str(meta.get("name", "")),
        f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


def _print_replicaset(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    names, images = layout_containers(_template_spec(obj))
    return [
        str(meta.get("name", "")),
        _int(spec.get("replicas")),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _print_daemonset(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    names, images = layout_containers(_template_spec(obj))
    return [
        str(meta.get("name", "")),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        format_labels(_template_spec(obj).get("nodeSelector")),
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _print_statefulset(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    names, images = layout_containers(_template_spec(obj))
    ready = f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}"
    return [str(meta.get("name", "")), ready, since(meta.get("creationTimestamp"), now), names, images]


def _job_status(obj: Obj) -> str:
    conditions = _d(obj.get("status")).get("conditions")
    if _first_condition_true(conditions, "Complete"):
        return "Complete"
    if _first_condition_true(conditions, "Failed"):
        return "Failed"
    if _d(obj.get("metadata")).get("deletionTimestamp"):
        return "Terminating"
    if _first_condition_true(conditions, "Suspended"):
        return "Suspended"
    if _first_condition_true(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _first_condition_true(conditions: Any, ctype: str) -> bool:
    """hasJobCondition: the first condition of that type decides."""
    for c in _ld(conditions):
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


def _print_job(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec.get('completions'))}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_int(spec.get('parallelism'))}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or now) - start).total_seconds())
    names, images = layout_containers(_template_spec(obj))
    return [
        str(meta.get("name", "")),
        _job_status(obj),
        completions,
        duration,
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _print_cronjob(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    last = "<none>" if not status.get("lastScheduleTime") else since(status.get("lastScheduleTime"), now)
    suspend = spec.get("suspend")
    suspend_cell = "<unset>" if suspend is None else ("True" if suspend else "False")
    job_spec = _d(_d(spec.get("jobTemplate")).get("spec"))
    names, images = layout_containers(_d(_d(job_spec.get("template")).get("spec")))
    return [
        str(meta.get("name", "")),
        str(spec.get("schedule", "")),
        str(spec.get("timeZone") if spec.get("timeZone") is not None else "<none>"),
        suspend_cell,
        len(_ld(status.get("active"))),
        last,
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(job_spec.get("selector")),
    ]
