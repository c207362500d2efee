"""Ephemeral containers (pkg/apis/core/validation: validateEphemeralContainers and
ValidatePodEphemeralContainersUpdate, the rules of the pods/ephemeralcontainers subresource).

Owns: the container rules every ephemeral container passes (name, image, env, mounts, policies),
the fields it may not set (ports, resources, probes, lifecycle, restart and resize policies:
"cannot be set for an Ephemeral Container"), volume mount subPaths, names unique across every
container of the pod, `targetContainerName` naming a regular or init container; and the update
rule: ephemeral containers can only be added (an existing one may be neither removed nor changed),
never to a static pod.
Must not import: the other kinds' validators or the dispatch in __init__.
"""

from __future__ import annotations

import json
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import duplicate, forbidden, not_found
from orchestra.api.policy.validation.container import validate_container
from orchestra.objects import Obj, as_dict, as_dicts

# EphemeralContainerCommon's fields that are not allowedEphemeralContainerFields, in struct order
FORBIDDEN_FIELDS = ("ports", "resources", "resizePolicy", "restartPolicy", "livenessProbe", "readinessProbe",
                    "startupProbe", "lifecycle")
CANNOT_SET = "cannot be set for an Ephemeral Container"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def _is_set(field: str, value: Any) -> bool:
    """Not Go's zero value: a nil pointer/slice/map is unset, an empty one is set; an empty
    ResourceRequirements struct is the zero value."""
    if field == "resources":
        return value is not None and value != {}
    return value is not None


def validate_ephemeral_containers(spec: Obj, path: str, volumes: set[str]) -> list[Cause]:
    """validateEphemeralContainers for the spec at `path`."""
    other = {str(c.get("name") or "") for key in ("containers", "initContainers")
             for c in as_dicts(spec.get(key))}
    names = set(other)
    errs: list[Cause] = []
    for i, ec in enumerate(as_dicts(spec.get("ephemeralContainers"))):
        p = f"{path}.ephemeralContainers[{i}]"
        common = {k: v for k, v in ec.items() if k not in (*FORBIDDEN_FIELDS, "targetContainerName")}
        errs += validate_container(common, p, volumes, init=False)
        name = str(ec.get("name") or "")
        if name in names:
            errs.append(duplicate(f"{p}.name", name))
        names.add(name)
        target = ec.get("targetContainerName")
        if target and target not in other:
            errs.append(not_found(f"{p}.targetContainerName", target))
        errs += [forbidden(f"{p}.{f}", CANNOT_SET) for f in FORBIDDEN_FIELDS if _is_set(f, ec.get(f))]
        for j, mount in enumerate(as_dicts(ec.get("volumeMounts"))):
            for key in ("subPath", "subPathExpr"):
                if mount.get(key):
                    errs.append(forbidden(f"{p}.volumeMounts[{j}].{key}", CANNOT_SET))
    return errs


def static_pod_causes(old: Obj) -> list[Cause]:
    """Static (mirror) pods take no ephemeral containers (#113935)."""
    if MIRROR_ANNOTATION in as_dict(as_dict(old.get("metadata")).get("annotations")):
        return [forbidden("", "static pods do not support ephemeral containers")]
    return []


def ephemeral_update_causes(pod: Obj, old: Obj) -> list[Cause]:
    """The update half of ValidatePodEphemeralContainersUpdate: existing ephemeral containers are
    neither removed nor changed (their order may change: patches do not keep it)."""
    errs: list[Cause] = []
    new = {str(c.get("name")): c for c in as_dicts(as_dict(pod.get("spec")).get("ephemeralContainers"))}
    for before in as_dicts(as_dict(old.get("spec")).get("ephemeralContainers")):
        name = str(before.get("name"))
        after = new.get(name)
        if after is None:
            message = f"existing ephemeral containers {json.dumps(name)} may not be removed\n"
            errs.append(forbidden("spec.ephemeralContainers", message))
        elif after != before:
            diff = _diff(before, after)
            message = f"existing ephemeral containers {json.dumps(name)} may not be changed\n{diff}"
            errs.append(forbidden("spec.ephemeralContainers", message))
    return errs


def _diff(old: Obj, new: Obj) -> str:
    """A short stand-in for go-cmp's Diff of the two containers: the fields that differ."""
    lines = ["  core.EphemeralContainer{"]
    for key in sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)):
        if key in old:
            lines.append(f"-  {key}: {json.dumps(old[key], sort_keys=True)},")
        if key in new:
            lines.append(f"+  {key}: {json.dumps(new[key], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"
