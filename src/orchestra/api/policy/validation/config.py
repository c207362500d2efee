"""The remaining kinds: ConfigMap and Secret (keys, immutability, secret types), Namespace, Node, Event,
Lease, and the generic fallback (object meta only).

Owns: the validators of those kinds.
Must not import: the pod, workload or service validators, or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    IMMUTABLE,
    forbidden,
    invalid,
    is_int,
    non_negative,
    not_supported,
    required,
    required_one_of,
    too_long,
)
from orchestra.api.machinery.names import (
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
)
from orchestra.api.policy.validation.container import TAINT_EFFECTS
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.api.serviceaccount import NAME_ANNOTATION, TOKEN_SECRET_TYPE
from orchestra.objects import Obj, as_dict, as_dicts, as_list


def _validate_data_keys(data: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key in sorted(as_dict(data)):
        errs += [invalid(f"{path}[{key}]", key, m) for m in is_config_map_key(key)]
    return errs


def _immutable_data(obj: Obj, old: Obj | None, keys: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    errs: list[Cause] = []
    if obj.get("immutable") is not True:
        errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in keys:
        if (obj.get(key) or {}) != (old.get(key) or {}):
            errs.append(forbidden(key, "field is immutable when `immutable` is set"))
    return errs


def validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _validate_data_keys(obj.get("data"), "data")
    for key in sorted(as_dict(obj.get("data"))):
        if key in as_dict(obj.get("binaryData")):
            errs.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    errs += _validate_data_keys(obj.get("binaryData"), "binaryData")
    size = sum(len(str(v)) for v in as_dict(obj.get("data")).values()) + sum(
        len(str(v)) * 3 // 4 for v in as_dict(obj.get("binaryData")).values()
    )
    if size > 1024 * 1024:
        errs.append(too_long("", 1024 * 1024))
    return errs + _immutable_data(obj, old, ("data", "binaryData"))


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    data = as_dict(obj.get("data"))
    errs += _validate_data_keys(data, "data")
    for key in _SECRET_REQUIRED_KEYS.get(str(obj.get("type")), ()):
        if key not in data:
            errs.append(required(f"data[{key}]", ""))
    annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    if obj.get("type") == TOKEN_SECRET_TYPE and not annotations.get(NAME_ANNOTATION):
        # the rest (uid, token, ca.crt) is the tokens controller's to fill in
        errs.append(required(f"metadata.annotations[{NAME_ANNOTATION}]", ""))
    if obj.get("type") == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        errs.append(required("data[username]", ""))
        errs.append(required("data[password]", ""))
    if old is not None and old.get("type") != obj.get("type"):
        errs.append(invalid("type", obj.get("type"), IMMUTABLE))
    return errs + _immutable_data(obj, old, ("data",))


def validate_namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_label)
    for i, fin in enumerate(as_list(as_dict(obj.get("spec")).get("finalizers"))):
        fin = str(fin)
        errs += [invalid(f"spec.finalizers[{i}]", fin, m) for m in is_qualified_name(fin)]
        if "/" not in fin and fin != "kubernetes":
            errs.append(
                invalid(
                    f"spec.finalizers[{i}]",
                    fin,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return errs


def validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    for i, taint in enumerate(as_dicts(as_dict(obj.get("spec")).get("taints"))):
        p = f"spec.taints[{i}]"
        key = taint.get("key") or ""
        errs += [invalid(f"{p}.key", key, m) for m in is_qualified_name(key)]
        if taint.get("value"):
            errs += [
                invalid(f"{p}.value", taint["value"], m) for m in is_valid_label_value(str(taint["value"]))
            ]
        errs += required_one_of(taint.get("effect"), f"{p}.effect", TAINT_EFFECTS)
    return errs


def validate_event(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    involved = as_dict(obj.get("involvedObject"))
    namespace = as_dict(obj.get("metadata")).get("namespace") or ""
    if involved.get("namespace") and namespace and involved["namespace"] != namespace:
        errs.append(
            invalid("involvedObject.namespace", involved["namespace"], "does not match event.namespace")
        )
    if obj.get("type") not in (None, "", "Normal", "Warning"):
        errs.append(not_supported("type", obj.get("type"), ("Normal", "Warning")))
    return errs


def validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    spec = as_dict(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if is_int(duration) and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    errs += non_negative(spec.get("leaseTransitions"), "spec.leaseTransitions")
    return errs


SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
HIGHEST_USER_PRIORITY = 1_000_000_000
_PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")


def validate_priority_class(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidatePriorityClass / ValidatePriorityClassUpdate."""
    name = str(as_dict(obj.get("metadata")).get("name") or "")
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    value = obj.get("value")
    if name.startswith("system-"):
        known = SYSTEM_PRIORITY_CLASSES.get(name)
        if known is None:
            reason = f"{name!r} is not a known system priority class".replace("'", '"')
        elif value != known:
            reason = f"value of {name} PriorityClass must be {known}"
        elif obj.get("globalDefault"):
            reason = f"globalDefault of {name} PriorityClass must be false"
        else:
            reason = ""
        if reason:
            errs.append(
                forbidden(
                    "metadata.name",
                    "priority class names with 'system-' prefix are reserved for "
                    f"system use only. error: {reason}",
                )
            )
    elif is_int(value) and value > HIGHEST_USER_PRIORITY:
        errs.append(
            forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}")
        )
    policy = obj.get("preemptionPolicy")
    if policy is not None:
        errs += required_one_of(policy, "preemptionPolicy", _PREEMPTION_POLICIES)
    if old is not None:
        if value != old.get("value"):
            errs.append(forbidden("value", "may not be changed in an update."))
        if policy != old.get("preemptionPolicy"):
            errs.append(Cause(IMMUTABLE, "Invalid value: " + (f'"{policy}"' if policy is not None else "null")
                              + ": field is immutable", "preemptionPolicy"))
    return errs


def validate_controller_revision(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateControllerRevision / ValidateControllerRevisionUpdate."""
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    errs += non_negative(obj.get("revision"), "revision")
    if old is not None and obj.get("data") != old.get("data"):
        errs.append(Cause(IMMUTABLE, "Invalid value: \"object\": field is immutable", "data"))
    return errs


def validate_generic(obj: Obj, old: Obj | None) -> list[Cause]:
    return validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
