"""The pod spec and the Pod kind: volumes, tolerations, the spec itself, pod templates, and which pod
fields an update may change (with kube's spec diff in the message).

Owns: validate_pod_spec, validate_pod_template, POD_UPDATE_MSG, and the Pod validator.
Must not import: the workload, service or config validators (workloads import this one).
"""

from __future__ import annotations

import json
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    GoRepr,
    duplicate,
    forbidden,
    go_quote,
    invalid,
    is_int,
    not_supported,
    required,
    required_one_of,
)
from orchestra.api.machinery.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
)
from orchestra.api.policy.validation.affinity import validate_affinity, validate_topology_spread_constraints
from orchestra.api.policy.validation.container import (
    DNS_POLICIES,
    FILE_MODE_MSG,
    RESTART_POLICIES,
    TAINT_EFFECTS,
    VOLUME_SOURCES,
    validate_container,
    validate_resource_requirements,
)
from orchestra.api.policy.validation.downward import validate_downward_api_items
from orchestra.api.policy.validation.ephemeral import (
    ephemeral_update_causes,
    static_pod_causes,
    validate_ephemeral_containers,
)
from orchestra.api.policy.validation.meta import validate_annotations, validate_labels, validate_object_meta
from orchestra.objects import Obj, as_dict, as_dicts, as_list


def _validate_volumes(volumes: Any, path: str) -> tuple[list[Cause], set[str]]:
    errs: list[Cause] = []
    names: set[str] = set()
    for i, vol in enumerate(as_dicts(volumes)):
        p = f"{path}[{i}]"
        el = _validate_volume_source(vol, p)
        name = vol.get("name") or ""
        if not name:
            el.append(required(f"{p}.name", ""))
        else:
            el += [invalid(f"{p}.name", name, m) for m in is_dns1123_label(name)]
        if name in names:
            el.append(duplicate(f"{p}.name", name))
        if el:
            errs += el
        else:
            names.add(name)
    return errs, names


def _validate_volume_source(vol: Obj, path: str) -> list[Cause]:
    sources = [k for k in VOLUME_SOURCES if vol.get(k) is not None]
    if not sources:
        return [required(path, "must specify a volume type")]
    errs = [forbidden(f"{path}.{k}", "may not specify more than 1 volume type") for k in sources[1:]]
    src, p = as_dict(vol.get(sources[0])), f"{path}.{sources[0]}"
    must = {
        "configMap": "name",
        "secret": "secretName",
        "hostPath": "path",
        "persistentVolumeClaim": "claimName",
    }
    if sources[0] in must and not src.get(must[sources[0]]):
        errs.append(required(f"{p}.{must[sources[0]]}", ""))
    mode = src.get("defaultMode")
    if is_int(mode) and not 0 <= mode <= 0o777:
        errs.append(invalid(f"{p}.defaultMode", mode, FILE_MODE_MSG))
    if sources[0] == "downwardAPI":
        errs += validate_downward_api_items(src.get("items"), p)
    for i, projection in enumerate(as_dicts(src.get("sources")) if sources[0] == "projected" else []):
        if projection.get("downwardAPI") is not None:
            items = as_dict(projection["downwardAPI"]).get("items")
            errs += validate_downward_api_items(items, f"{p}.sources[{i}].downwardAPI")
    return errs


def _validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, t in enumerate(as_dicts(tolerations)):
        p = f"{path}[{i}]"
        key, op, value, effect = (
            t.get("key", ""),
            t.get("operator", ""),
            t.get("value", ""),
            t.get("effect", ""),
        )
        if key:
            errs += [invalid(f"{p}.key", key, m) for m in is_qualified_name(key)]
        if not key and op != "Exists":
            errs.append(
                invalid(
                    f"{p}.operator",
                    op,
                    'operator must be Exists when `key` is empty, '
                    'which means "match all values and all keys"',
                )
            )
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(
                invalid(f"{p}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
            )
        if op in ("Equal", ""):
            msgs = is_valid_label_value(str(value))
            if msgs:
                errs.append(invalid(f"{p}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(
                    invalid(
                        f"{p}.operator",
                        GoRepr(
                            f'core.Toleration{{Key:{go_quote(key)}, '
                            f'Operator:"Exists", Value:{go_quote(str(value))}}}'
                        ),
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errs.append(not_supported(f"{p}.operator", op, ("Equal", "Exists")))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(f"{p}.effect", effect, TAINT_EFFECTS))
    return errs


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    """ValidatePodSpec for a pod's or a template's spec at `path` (`spec`, `spec.template.spec`)."""
    spec = as_dict(spec)
    errs, volumes = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    containers = as_dicts(spec.get("containers"))
    init_containers = as_dicts(spec.get("initContainers"))
    if not containers:
        errs.append(required(f"{path}.containers", ""))
    names: set[str] = set()
    for i, c in enumerate(containers):
        p = f"{path}.containers[{i}]"
        errs += validate_container(c, p, volumes, init=False)
        if c.get("name") in names:
            errs.append(duplicate(f"{p}.name", c.get("name")))
        names.add(c.get("name") or "")
    init_names = set(names)
    for i, c in enumerate(init_containers):
        p = f"{path}.initContainers[{i}]"
        errs += validate_container(c, p, volumes, init=True)
        if c.get("name") in init_names:
            errs.append(duplicate(f"{p}.name", c.get("name")))
        init_names.add(c.get("name") or "")
    errs += required_one_of(spec.get("restartPolicy"), f"{path}.restartPolicy", RESTART_POLICIES)
    errs += required_one_of(spec.get("dnsPolicy"), f"{path}.dnsPolicy", DNS_POLICIES)
    errs += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    errs += validate_affinity(spec.get("affinity"), f"{path}.affinity")
    errs += validate_topology_spread_constraints(spec.get("topologySpreadConstraints"),
                                                 f"{path}.topologySpreadConstraints")
    sa = spec.get("serviceAccountName") or ""
    if sa:
        errs += [invalid(f"{path}.serviceAccountName", sa, m) for m in is_dns1123_subdomain(sa)]
    deadline = spec.get("activeDeadlineSeconds")
    if is_int(deadline) and not 1 <= deadline <= 2147483647:
        errs.append(
            invalid(f"{path}.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive")
        )
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            errs += [invalid(f"{path}.{key}", spec[key], m) for m in is_dns1123_label(str(spec[key]))]
    errs += _validate_tolerations(spec.get("tolerations"), f"{path}.tolerations")
    errs += _validate_scheduling_gates(spec.get("schedulingGates"), f"{path}.schedulingGates")
    if spec.get("overhead") is not None:  # validateOverhead: the container rules, as limits
        errs += validate_resource_requirements({"limits": spec["overhead"]}, f"{path}.overhead")
    return errs + validate_ephemeral_containers(spec, path, volumes)


def _validate_scheduling_gates(gates: Any, path: str) -> list[Cause]:
    """validateSchedulingGates: qualified names (the error on the item), no duplicates."""
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, gate in enumerate(as_dicts(gates)):
        name = str(gate.get("name") or "")
        errs += [invalid(f"{path}[{i}]", name, m) for m in is_qualified_name(name)]
        if name in seen:
            errs.append(duplicate(f"{path}[{i}]", name))
        seen.add(name)
    return errs


def _validate_only_deleted_gates(new: Any, old: Any) -> list[Cause]:
    """validateOnlyDeletedSchedulingGates: after creation, gates can only be removed."""
    old_names = {str(g.get("name") or "") for g in as_dicts(old)}
    return [forbidden(f"spec.schedulingGates[{i}].name",
                      f"only deletion is allowed, but found new scheduling gate '{g.get('name') or ''}'")
            for i, g in enumerate(as_dicts(new)) if str(g.get("name") or "") not in old_names]


def validate_pod_template(template: Any, path: str) -> list[Cause]:
    """ValidatePodTemplateSpec: template labels/annotations and the pod spec."""
    template = as_dict(template)
    meta = as_dict(template.get("metadata"))
    errs = validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    errs += validate_pod_spec(template.get("spec"), f"{path}.spec")
    if as_dicts(as_dict(template.get("spec")).get("ephemeralContainers")):
        errs.append(forbidden(f"{path}.spec.ephemeralContainers",
                              "ephemeral containers not allowed in pod template"))
    return errs


# --- per kind ----------------------------------------------------------------------------------------


def validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    spec = as_dict(obj.get("spec"))
    errs += validate_pod_spec(spec, "spec")
    if old is None and spec.get("nodeName") and as_dicts(spec.get("schedulingGates")):
        errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    if old is None and as_dicts(spec.get("ephemeralContainers")):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if old is not None:
        old_gates = as_dict(old.get("spec")).get("schedulingGates")
        errs += _validate_only_deleted_gates(spec.get("schedulingGates"), old_gates)
        errs += _validate_pod_update(spec, as_dict(old.get("spec")))
    return errs


def validate_pod_ephemeral_update(obj: Obj, old: Obj) -> list[Cause]:
    """ValidatePodEphemeralContainersUpdate (pods/ephemeralcontainers): the pod is valid and its
    ephemeral containers were only added to."""
    static = static_pod_causes(old)
    if static:
        return static
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    return errs + validate_pod_spec(obj.get("spec"), "spec") + ephemeral_update_causes(obj, old)


POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _validate_pod_update(new: Obj, old: Obj) -> list[Cause]:
    new_deadline, old_deadline = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if (
        new_deadline is not None
        and old_deadline is not None
        and is_int(new_deadline)
        and new_deadline > old_deadline
    ):
        return [
            invalid(
                "spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"
            )
        ]
    if new_deadline is None and old_deadline is not None:
        return [
            invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        ]
    munged = json.loads(json.dumps(new))
    for key in ("containers", "initContainers"):
        for c_new, c_old in zip(as_dicts(munged.get(key)), as_dicts(old.get(key)), strict=False):
            if "image" in c_old:
                c_new["image"] = c_old["image"]
    munged.pop("activeDeadlineSeconds", None)
    munged.pop("schedulingGates", None)  # checked by _validate_only_deleted_gates
    if "schedulingGates" in old:
        munged["schedulingGates"] = old["schedulingGates"]
    if old_deadline is not None:
        munged["activeDeadlineSeconds"] = old_deadline
    old_tolerations = as_list(old.get("tolerations"))
    if all(t in as_list(munged.get("tolerations")) for t in old_tolerations):
        if old_tolerations or "tolerations" in old:
            munged["tolerations"] = old.get("tolerations")
        else:
            munged.pop("tolerations", None)
    if (
        is_int(old.get("terminationGracePeriodSeconds"))
        and old["terminationGracePeriodSeconds"] < 0
        and new.get("terminationGracePeriodSeconds") == 1
    ):
        munged["terminationGracePeriodSeconds"] = old["terminationGracePeriodSeconds"]
    if munged == old:
        return []
    diff = _spec_diff(old, munged)
    return [forbidden("spec", POD_UPDATE_MSG + "\n" + diff)]


def _spec_diff(old: Obj, new: Obj) -> str:
    """A short stand-in for cmp.Diff: the top-level spec fields that differ."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    lines = ["  core.PodSpec{"]
    for k in keys:
        if k in old:
            lines.append(f"-  {k}: {json.dumps(old[k], sort_keys=True)},")
        if k in new:
            lines.append(f"+  {k}: {json.dumps(new[k], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"
