"""The batch/v1 kinds: Job (completions, parallelism, backoff, pod template) and CronJob (schedule,
time zone, concurrency policy, job template).

Owns: the Job and CronJob validators; cron parsing itself is cron.py's.
Must not import: the service or config validators, or the dispatch in __init__.
"""

from __future__ import annotations

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    IMMUTABLE,
    GoRepr,
    go_label_selector,
    go_string_map,
    invalid,
    non_negative,
    not_supported,
    required,
    required_one_of,
)
from orchestra.api.machinery.names import is_dns1123_subdomain
from orchestra.api.policy.validation.cron import cron_error, valid_time_zone
from orchestra.api.policy.validation.meta import (
    selector_empty,
    selector_matches,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
)
from orchestra.api.policy.validation.pod import validate_pod_template
from orchestra.objects import Obj, as_dict


def _validate_job_spec(spec: Obj, path: str, *, template_in_job: bool) -> list[Cause]:
    errs: list[Cause] = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ):
        errs += non_negative(spec.get(key), f"{path}.{key}")
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed")))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
    sel = spec.get("selector")
    template = as_dict(spec.get("template"))
    if sel is not None:
        errs += validate_label_selector(sel, f"{path}.selector")
        labels = as_dict(template.get("metadata")).get("labels")
        if template_in_job and not selector_empty(sel) and not selector_matches(sel, labels):
            errs.append(
                invalid(
                    f"{path}.template.metadata.labels",
                    GoRepr(go_string_map(labels)),
                    "`selector` does not match template `labels`",
                )
            )
    errs += validate_pod_template(template, f"{path}.template")
    policy = as_dict(template.get("spec")).get("restartPolicy", "")
    if policy not in ("OnFailure", "Never"):
        errs.append(not_supported(f"{path}.template.spec.restartPolicy", policy, ("OnFailure", "Never")))
    return errs


def validate_job(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _validate_job_spec(spec, "spec", template_in_job=True)
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        if old_spec.get("selector") is not None and spec.get("selector") != old_spec.get("selector"):
            errs.append(invalid("spec.selector", go_label_selector(spec.get("selector")), IMMUTABLE))
        if spec.get("template") != old_spec.get("template"):
            errs.append(invalid("spec.template", GoRepr("core.PodTemplateSpec{...}"), IMMUTABLE))
        if spec.get("completionMode") != old_spec.get("completionMode"):
            errs.append(invalid("spec.completionMode", spec.get("completionMode"), IMMUTABLE))
    return errs


def validate_cronjob(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    name = as_dict(obj.get("metadata")).get("name") or ""
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    if len(name) > 52:
        errs.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    schedule = spec.get("schedule") or ""
    if not schedule:
        errs.append(required("spec.schedule", ""))
    else:
        problem = cron_error(schedule)
        if problem:
            errs.append(invalid("spec.schedule", schedule, problem))
        if "TZ" in schedule and spec.get("timeZone") is not None:
            errs.append(
                invalid(
                    "spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"
                )
            )
    tz = spec.get("timeZone")
    if tz is not None and not valid_time_zone(str(tz)):
        errs.append(invalid("spec.timeZone", tz, f"unknown time zone {tz}"))
    errs += required_one_of(spec.get("concurrencyPolicy"), "spec.concurrencyPolicy",
                            ("Allow", "Forbid", "Replace"))
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs += non_negative(spec.get(key), f"spec.{key}")
    job_template = as_dict(spec.get("jobTemplate"))
    errs += validate_labels(
        as_dict(job_template.get("metadata")).get("labels"), "spec.jobTemplate.metadata.labels"
    )
    errs += _validate_job_spec(as_dict(job_template.get("spec")), "spec.jobTemplate.spec",
                               template_in_job=False)
    return errs
