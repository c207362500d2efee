"""The downward API: env `valueFrom` sources and downwardAPI volume items, checked like kube-apiserver
1.32 (validateEnvVarValueFrom, validateObjectFieldSelector, validateContainerResourceFieldSelector,
validateDownwardAPIVolumeFile and pods.ConvertDownwardAPIFieldLabel).

Owns: validate_env_value_from, validate_downward_api_items.
Kube quirks kept: a downwardAPI volume item's errors name the volume source (`...downwardAPI.fieldRef`,
no item index), and a `metadata.labels['x']` subscript is checked at the fieldRef itself.
Must not import: container.py, pod.py or any per-kind module (container.py imports this one).
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import invalid, is_int, not_supported, required
from orchestra.api.machinery.names import is_config_map_key, is_dns1123_subdomain, is_qualified_name
from orchestra.objects import Obj, as_dict, as_dicts
from orchestra.objects.quantity import Quantity, QuantityError

ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
VOLUME_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
RESOURCE_FIELD_PATHS = (
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
)
_HUGEPAGES = ("limits.hugepages-", "requests.hugepages-")
_CONVERTIBLE = {
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
}
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
_SIZES = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")
_SIZES_MSG = "only divisor's values " + ", ".join(_SIZES) + " are supported with the "
_DIVISORS = {
    "cpu": (("1m", "1"), "only divisor's values 1m and 1 are supported with the cpu resource"),
    "memory": (_SIZES, _SIZES_MSG + "memory resource"),
    "ephemeral-storage": (_SIZES, _SIZES_MSG + "local ephemeral storage resource"),
}
_HUGEPAGES_DIVISOR = _SIZES_MSG + "hugepages resource"


def _split_subscript(path: str) -> tuple[str, str] | None:
    """fieldpath.SplitMaybeSubscriptedPath: `metadata.labels['app']` -> ("metadata.labels", "app")."""
    if not path.endswith("']"):
        return None
    head, sep, subscript = path[:-2].partition("['")
    return (head, subscript) if sep and head else None


def _convert(api_version: str, path: str) -> str:
    """pods.ConvertDownwardAPIFieldLabel: the internal field path, or ValueError with kube's wording."""
    if api_version != "v1":
        raise ValueError(f"unsupported pod version: {api_version}")
    split = _split_subscript(path)
    if split is not None:
        if split[0] in ("metadata.annotations", "metadata.labels"):
            return path
        raise ValueError(f"field label does not support subscript: {path}")
    if path == "spec.host":  # what old v1 clients send for spec.nodeName
        return "spec.nodeName"
    if path not in _CONVERTIBLE:
        raise ValueError(f"field label not supported: {path}")
    return path


def _field_ref(ref: Obj, allowed: tuple[str, ...], path: str) -> list[Cause]:
    api_version, field_path = ref.get("apiVersion") or "", ref.get("fieldPath") or ""
    if not api_version:
        return [required(f"{path}.apiVersion", "")]
    if not field_path:
        return [required(f"{path}.fieldPath", "")]
    try:
        internal = _convert(str(api_version), str(field_path))
    except ValueError as exc:
        return [invalid(f"{path}.fieldPath", field_path, f"error converting fieldPath: {exc}")]
    split = _split_subscript(internal)
    if split is not None:
        head, subscript = split
        key = subscript.lower() if head == "metadata.annotations" else subscript
        return [invalid(path, key, m) for m in is_qualified_name(key)]
    if internal not in allowed:
        return [not_supported(f"{path}.fieldPath", internal, allowed)]
    return []


def _divisor(resource: str, divisor: Any, path: str) -> list[Cause]:
    if divisor is None:
        return []
    try:
        canonical = Quantity.parse(divisor)
    except QuantityError:
        return []  # the schema check reports a malformed quantity
    if canonical.value == 0:
        return []  # unset
    kind = resource.partition(".")[2]
    if kind in _DIVISORS and str(canonical) not in _DIVISORS[kind][0]:
        return [invalid(f"{path}.divisor", resource, _DIVISORS[kind][1])]
    if resource.startswith(_HUGEPAGES) and str(canonical) not in _SIZES:
        return [invalid(f"{path}.divisor", resource, _HUGEPAGES_DIVISOR)]
    return []


def _resource_field_ref(ref: Obj, path: str, *, volume: bool) -> list[Cause]:
    resource = str(ref.get("resource") or "")
    errs: list[Cause] = []
    if volume and not ref.get("containerName"):
        errs.append(required(f"{path}.containerName", ""))
    elif not resource:
        errs.append(required(f"{path}.resource", ""))
    elif resource not in RESOURCE_FIELD_PATHS and not resource.startswith(_HUGEPAGES):
        errs.append(not_supported(f"{path}.resource", resource, RESOURCE_FIELD_PATHS))
    return errs + _divisor(resource, ref.get("divisor"), path)


def _key_selector(ref: Obj, path: str) -> list[Cause]:
    """validateConfigMapKeySelector / validateSecretKeySelector."""
    name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
    errs = [invalid(f"{path}.name", name, m) for m in is_dns1123_subdomain(name)]
    if not key:
        return [*errs, required(f"{path}.key", "")]
    return errs + [invalid(f"{path}.key", key, m) for m in is_config_map_key(key)]


def validate_env_value_from(var: Obj, path: str) -> list[Cause]:
    """validateEnvVarValueFrom at `<container>.env[i].valueFrom`."""
    source = var.get("valueFrom")
    if source is None:
        return []
    source = as_dict(source)
    errs: list[Cause] = []
    count = 0
    for key in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"):
        if source.get(key) is None:
            continue
        count += 1
        ref, p = as_dict(source[key]), f"{path}.{key}"
        if key == "fieldRef":
            errs += _field_ref(ref, ENV_FIELD_PATHS, p)
        elif key == "resourceFieldRef":
            errs += _resource_field_ref(ref, p, volume=False)
        else:
            errs += _key_selector(ref, p)
    if count == 0:
        errs.append(
            invalid(
                path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )
        )
    elif var.get("value"):
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif count > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _local_path(target: str, path: str) -> list[Cause]:
    """ValidateLocalNonReservedPath."""
    errs = [invalid(path, target, "must be a relative path")] if target.startswith("/") else []
    if ".." in target.split("/"):
        errs.append(invalid(path, target, "must not contain '..'"))
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def _volume_file(item: Obj, path: str) -> list[Cause]:
    """validateDownwardAPIVolumeFile (kube passes the source's path, not the item's)."""
    target = str(item.get("path") or "")
    errs = [required(f"{path}.path", "")] if not target else []
    errs += _local_path(target, f"{path}.path")
    if item.get("fieldRef") is not None:
        errs += _field_ref(as_dict(item["fieldRef"]), VOLUME_FIELD_PATHS, f"{path}.fieldRef")
        if item.get("resourceFieldRef") is not None:
            errs.append(
                invalid(path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously")
            )
    elif item.get("resourceFieldRef") is not None:
        ref = as_dict(item["resourceFieldRef"])
        errs += _resource_field_ref(ref, f"{path}.resourceFieldRef", volume=True)
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    mode = item.get("mode")
    if is_int(mode) and not 0 <= mode <= 0o777:
        errs.append(invalid(f"{path}.mode", mode, FILE_MODE_MSG))
    return errs


def validate_downward_api_items(items: Any, path: str) -> list[Cause]:
    """Every item of a downwardAPI volume (or projected downwardAPI source) at `path`."""
    return [c for item in as_dicts(items) for c in _volume_file(item, path)]
