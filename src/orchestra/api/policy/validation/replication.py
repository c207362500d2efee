"""The core/v1 pod-template kinds: ReplicationController and PodTemplate
(pkg/apis/core/validation: ValidateReplicationController[Update|StatusUpdate], ValidatePodTemplate).

Owns: the RC's equality selector (a plain label map, required and non-empty, matching the template's
labels; unlike a ReplicaSet's it may change), its template rules (restartPolicy Always, no
activeDeadlineSeconds) and the status counters' bounds; a PodTemplate's template.
Must not import: the other kinds' validators or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    GoRepr,
    go_string_map,
    invalid,
    non_negative,
    not_supported,
    required,
)
from orchestra.api.machinery.names import is_dns1123_subdomain
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.api.policy.validation.pod import validate_pod_template
from orchestra.objects import Obj, as_dict

_STATUS_COUNTS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
                  "observedGeneration")


def _selects(selector: dict[str, Any], labels: Any) -> bool:
    """labels.Set(selector).AsSelector().Matches(labels): every pair present with the same value."""
    labels = as_dict(labels)
    return all(k in labels and str(labels[k]) == str(v) for k, v in selector.items())


def _template_for_rc(template: Any, selector: dict[str, Any], path: str) -> list[Cause]:
    """ValidatePodTemplateSpecForRC."""
    if template is None:
        return [required(path, "")]
    template = as_dict(template)
    labels = as_dict(template.get("metadata")).get("labels")
    errs: list[Cause] = []
    if selector and not _selects(selector, labels):
        errs.append(invalid(f"{path}.metadata.labels", GoRepr(go_string_map(labels)),
                            "`selector` does not match template `labels`"))
    errs += validate_pod_template(template, path)
    pod_spec = as_dict(template.get("spec"))
    policy = pod_spec.get("restartPolicy") or ""
    if policy != "Always":
        errs.append(not_supported(f"{path}.spec.restartPolicy", policy, ("Always",)))
    deadline = pod_spec.get("activeDeadlineSeconds")
    if deadline is not None:
        errs.append(invalid(f"{path}.spec.activeDeadlineSeconds", deadline, "must not be specified"))
    return errs


def _status(status: Obj) -> list[Cause]:
    """ValidateReplicationControllerStatus."""
    counts = {k: status.get(k) for k in _STATUS_COUNTS}
    errs = [c for k, v in counts.items() for c in non_negative(v, f"status.{k}")]
    ints = {k: v if isinstance(v, int) and not isinstance(v, bool) else 0 for k, v in counts.items()}
    msg = "cannot be greater than status.replicas"
    for key in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
        if ints[key] > ints["replicas"]:
            errs.append(invalid(f"status.{key}", ints[key], msg))
    if ints["availableReplicas"] > ints["readyReplicas"]:
        errs.append(invalid("status.availableReplicas", ints["availableReplicas"],
                            "cannot be greater than readyReplicas"))
    return errs


def validate_replication_controller(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateReplicationController / ValidateReplicationControllerUpdate (the selector may change)."""
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += non_negative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    selector = as_dict(spec.get("selector"))
    if not selector:
        errs.append(required("spec.selector", ""))
    errs += non_negative(spec.get("replicas", 0), "spec.replicas")
    errs += _template_for_rc(spec.get("template"), selector, "spec.template")
    if old is not None:
        errs += _status(as_dict(obj.get("status")))
    return errs


def validate_pod_template_kind(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidatePodTemplate / ValidatePodTemplateUpdate."""
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    return errs + validate_pod_template(obj.get("template"), "template")
