"""Containers: images, ports, env, volume mounts, probes and lifecycle handlers, resource requests and
limits; plus the pod-spec enums (protocols, policies, taint effects) other kinds reuse.

Owns: validate_container and the checks it is made of.
Must not import: pod.py or any per-kind module (they import this one).
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    NEGATIVE,
    duplicate,
    forbidden,
    invalid,
    is_int,
    non_negative,
    not_found,
    not_supported,
    required,
    required_one_of,
)
from orchestra.api.machinery.names import (
    is_dns1123_label,
    is_valid_port_name,
    port_number,
    port_number_or_name,
)
from orchestra.api.policy.validation.downward import validate_env_value_from
from orchestra.objects import Obj, as_dict, as_dicts, as_list
from orchestra.objects.quantity import Quantity, QuantityError

# --- pod spec ----------------------------------------------------------------------------------------

PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)  # fmt: skip
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"


def _validate_handler(handler: Obj, path: str, kinds: tuple[str, ...]) -> list[Cause]:
    errs: list[Cause] = []
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if action is None:
            continue
        if count > 0:
            errs.append(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        action, p = as_dict(action), f"{path}.{kind}"
        if kind == "exec" and not as_list(action.get("command")):
            errs.append(required(f"{p}.command", ""))
        elif kind == "httpGet":
            if not action.get("path"):
                errs.append(required(f"{p}.path", ""))
            errs += port_number_or_name(action.get("port", 0), f"{p}.port")
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.append(not_supported(f"{p}.scheme", action.get("scheme", ""), ("HTTP", "HTTPS")))
        elif kind == "tcpSocket":
            errs += port_number_or_name(action.get("port", 0), f"{p}.port")
        elif kind == "grpc":
            errs += port_number(action.get("port", 0), f"{p}.port")
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _validate_probe(probe: Obj, path: str) -> list[Cause]:
    errs = _validate_handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs += non_negative(probe.get(key, 0), f"{path}.{key}")
    grace = probe.get("terminationGracePeriodSeconds")
    if is_int(grace) and grace <= 0:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
    return errs


def _parse_or_report(value: Any, path: str, errs: list[Cause]) -> Quantity | None:
    try:
        return Quantity.parse(value)
    except QuantityError as exc:
        errs.append(invalid(path, value, str(exc)))
        return None


def _native(name: str) -> bool:
    """helper.IsNativeResource: unprefixed, or in the kubernetes.io domain."""
    return "/" not in name or "kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    """helper.IsOvercommitAllowed: native resources but hugepages; extended resources are not."""
    return _native(name) and not name.startswith("hugepages-")


def _quantity_value(name: str, raw: Any, path: str, errs: list[Cause]) -> Quantity | None:
    """ValidateResourceQuantityValue: not negative, and whole for integer (extended) resources.
    No upper bound: kube-apiserver accepts `cpu: 1e20` (see orchestra.objects.quantity)."""
    q = _parse_or_report(raw, path, errs)
    if q is None:
        return None
    if q.value < 0:
        errs.append(invalid(path, str(q), NEGATIVE))
    if not _native(name) and q.value.denominator != 1:
        errs.append(invalid(path, str(q), "must be an integer"))
    return q


def _resource_name(name: str, path: str) -> list[Cause]:
    if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-") and "/" not in name:
        return [invalid(path, name, "must be a standard resource for containers")]
    return []


def validate_resource_requirements(res: Any, path: str) -> list[Cause]:
    """kube's validateResourceRequirements for a container's resources (and a pod's overhead)."""
    res = as_dict(res)
    errs: list[Cause] = []
    limits: dict[str, Quantity | None] = {}
    for name, raw in sorted(as_dict(res.get("limits")).items()):
        p = f"{path}.limits[{name}]"
        errs += _resource_name(name, p)
        limits[name] = _quantity_value(name, raw, p, errs)
    for name, raw in sorted(as_dict(res.get("requests")).items()):
        p = f"{path}.requests[{name}]"
        errs += _resource_name(name, p)
        q = _quantity_value(name, raw, p, errs)
        limit = limits.get(name)
        if name not in limits:
            if not _overcommit_allowed(name):
                errs.append(required(f"{path}.limits", "Limit must be set for non overcommitable resources"))
        elif q is None or limit is None:
            continue  # already reported as malformed
        elif q.value != limit.value and not _overcommit_allowed(name):
            errs.append(invalid(f"{path}.requests", str(q), f"must be equal to {name} limit of {limit}"))
        elif q.value > limit.value:
            errs.append(invalid(f"{path}.requests", str(q),
                                f"must be less than or equal to {name} limit of {limit}"))
    return errs


def _validate_env(env: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, var in enumerate(as_dicts(env)):
        p = f"{path}[{i}]"
        name = var.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name", ""))
        elif any(ord(ch) < 32 or ord(ch) > 126 or ch == "=" for ch in name):
            errs.append(
                invalid(
                    f"{p}.name",
                    name,
                    "a valid environment variable name must consist "
                    "only of printable ASCII characters other than '='",
                )
            )
        errs += validate_env_value_from(var, f"{p}.valueFrom")
    return errs


def _validate_container_ports(ports: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(as_dicts(ports)):
        p = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs += [invalid(f"{p}.name", name, m) for m in msgs]
            elif name in names:
                errs.append(duplicate(f"{p}.name", name))
            else:
                names.add(name)
        cp = port.get("containerPort", 0)
        errs += (
            [required(f"{p}.containerPort", "")] if cp in (0, None) else port_number(cp, f"{p}.containerPort")
        )
        if port.get("hostPort") not in (0, None):
            errs += port_number(port.get("hostPort"), f"{p}.hostPort")
        errs += required_one_of(port.get("protocol"), f"{p}.protocol", PROTOCOLS)
    return errs


def _validate_volume_mounts(mounts: Any, volumes: set[str], path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, m in enumerate(as_dicts(mounts)):
        p = f"{path}[{i}]"
        name, mount_path = m.get("name") or "", m.get("mountPath") or ""
        if not name:
            errs.append(required(f"{p}.name", ""))
        if name not in volumes:
            errs.append(not_found(f"{p}.name", name))
        if not mount_path:
            errs.append(required(f"{p}.mountPath", ""))
        if mount_path in seen:
            errs.append(invalid(f"{p}.mountPath", mount_path, "must be unique"))
        seen.add(mount_path)
    return errs


def validate_container(c: Obj, path: str, volumes: set[str], *, init: bool) -> list[Cause]:
    errs: list[Cause] = []
    name = c.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name", ""))
    else:
        errs += [invalid(f"{path}.name", name, m) for m in is_dns1123_label(name)]
    image = c.get("image") or ""
    if not image:
        errs.append(required(f"{path}.image", ""))
    elif image != image.strip():
        errs.append(invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    errs += _validate_container_ports(c.get("ports"), f"{path}.ports")
    errs += _validate_env(c.get("env"), f"{path}.env")
    errs += _validate_volume_mounts(c.get("volumeMounts"), volumes, f"{path}.volumeMounts")
    errs += required_one_of(
        c.get("terminationMessagePolicy"), f"{path}.terminationMessagePolicy", _TERMINATION_MESSAGE_POLICIES
    )
    errs += required_one_of(c.get("imagePullPolicy"), f"{path}.imagePullPolicy", _PULL_POLICIES)
    errs += validate_resource_requirements(c.get("resources"), f"{path}.resources")
    sidecar = init and c.get("restartPolicy") == "Always"
    if c.get("restartPolicy") is not None and not init:
        errs.append(forbidden(f"{path}.restartPolicy", "may not be set for non-init containers"))
    elif c.get("restartPolicy") is not None and not sidecar:  # 1.32 allows only restartable init containers
        errs.append(not_supported(f"{path}.restartPolicy", c.get("restartPolicy"), ("Always",)))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(probe) is None:
            continue
        if init and not sidecar:
            errs.append(
                forbidden(
                    f"{path}.{probe}", "may not be set for init containers without restartPolicy=Always"
                )
            )
            continue
        errs += _validate_probe(as_dict(c[probe]), f"{path}.{probe}")
        if probe != "readinessProbe" and as_dict(c[probe]).get("successThreshold", 1) != 1:
            threshold = as_dict(c[probe]).get("successThreshold")
            errs.append(invalid(f"{path}.{probe}.successThreshold", threshold, "must be 1"))
    lifecycle = as_dict(c.get("lifecycle"))
    if c.get("lifecycle") is not None and init and not sidecar:
        errs.append(forbidden(f"{path}.lifecycle",
                              "may not be set for init containers without restartPolicy=Always"))
        lifecycle = {}
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            errs += _validate_handler(as_dict(lifecycle[hook]), f"{path}.lifecycle.{hook}",
                                      ("exec", "httpGet", "tcpSocket", "sleep"))
    return errs
