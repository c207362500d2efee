"""Admission that reads other objects: kube-apiserver's Priority, DefaultStorageClass,
DefaultIngressClass and StorageObjectInUseProtection plugins.

Owns, for the write paths of the API core (after defaulting, before validation):
  * Pod create — spec.priority and spec.preemptionPolicy from the PriorityClass named by
    spec.priorityClassName, or from the global default class (its name filled in), or 0 and
    PreemptLowerPriority when there is none; an unknown class name, or a priority / policy in the
    spec that differs from the class's, is 403 Forbidden with kube's wording;
  * PriorityClass create and update — only one class may be globalDefault;
  * PriorityClass delete — the built-in system classes cannot be deleted.
  * PersistentVolumeClaim create — a claim without spec.storageClassName (and without the beta
    annotation) gets the default StorageClass's name (the newest default when there are several);
    an explicit "" means "no class" and is kept;
  * Ingress create — DefaultIngressClass: an Ingress that names no class (neither
    spec.ingressClassName nor the `kubernetes.io/ingress.class` annotation) gets the default
    IngressClass's name (the newest default when there are several);
  * PersistentVolumeClaim and PersistentVolume create — StorageObjectInUseProtection: the
    `kubernetes.io/pvc-protection` / `kubernetes.io/pv-protection` finalizer, which
    reconcilers/protection.py removes once nothing uses the object.
  * LimitRanger (limitranger.py): a new pod's default resources (mutating, with admit_create), a
    pod's or claim's min/max/ratio limits (validate_limits);
  * ResourceQuota (quota/): charge_quotas, the quotas a write charges (api/request/quota.py stores
    them with a compare-and-swap before the object).
The built-in classes themselves (system-node-critical, system-cluster-critical) are created at
start-up by the app's bootstrap. Pod updates keep the priority computed on create (strategy.py).

The seam for configurable plugins (kube's --enable-admission-plugins): `AdmissionPlugin`, an object
with `name` and `async admit(Attributes)` that may change `attributes.obj` (mutating) and raises an
ApiError to refuse (validating). The core runs the plugins it was given (`ApiCore(admission=...)`)
on create and update, after the built-in rules above and before validation, in their order.
`Attributes` carries the operation, the object (and the old one on update), the requesting user
(None for in-process components, whose path is trusted) and a `lookup` of other objects. The
ServiceAccount plugin (serviceaccount.py) is the first, DefaultTolerationSeconds (tolerationseconds.py)
another; quota, limits and node restriction go here too.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import attrs

from orchestra.api.errors import Forbidden
from orchestra.api.policy import limitranger
from orchestra.api.policy.ingressclass import default_ingress_class, requested_class
from orchestra.api.policy.quota.check import check_request
from orchestra.api.policy.quota.check import forbidden as quota_forbidden
from orchestra.api.policy.quota.evaluators import CREATE, UPDATE
from orchestra.api.policy.storageclass import BETA_CLASS_ANNOTATION, is_default_class
from orchestra.api.policy.validation.config import SYSTEM_PRIORITY_CLASSES
from orchestra.api.user import UserInfo
from orchestra.objects import Obj, name_of, namespace_of

PriorityClasses = Callable[[], list[Obj]]
StorageClasses = Callable[[], list[Obj]]
LimitRanges = Callable[[str], list[Obj]]  # the LimitRanges of a namespace
IngressClasses = Callable[[], list[Obj]]
PREEMPT_LOWER = "PreemptLowerPriority"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
GROUP = "scheduling.k8s.io"

SYSTEM_CLASS_OBJECTS: tuple[Obj, ...] = (
    {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "system-node-critical"},
        "value": SYSTEM_PRIORITY_CLASSES["system-node-critical"],
        "description": "Used for system critical pods that must not be moved from their current node.",
    },
    {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "system-cluster-critical"},
        "value": SYSTEM_PRIORITY_CLASSES["system-cluster-critical"],
        "description": "Used for system critical pods that must run in the cluster, but can be moved to "
        "another node if necessary.",
    },
)


Lookup = Callable[[str, str | None, str], Obj | None]  # (kind, namespace, name) -> the stored object


@attrs.frozen
class Attributes:
    """What an admission plugin sees of one write (kube's admission.Attributes)."""

    operation: str  # "CREATE" | "UPDATE"
    kind: str
    namespace: str | None
    name: str
    obj: Obj  # mutating plugins change it in place
    old: Obj | None
    user: UserInfo | None  # None: an in-process component
    lookup: Lookup
    subresource: str = ""  # "status" for a status update (kube admits those too)
    group: str = ""  # the kind's API group: a custom kind may share a built-in kind's name


class AdmissionPlugin(Protocol):
    name: str

    async def admit(self, attributes: Attributes) -> None: ...


def forbidden(resource: str, name: str, why: str) -> Forbidden:
    """admission.NewForbidden: `<resource> "<name>" is forbidden: <why>`."""
    plural, _, group = resource.partition(".")
    return Forbidden(f'{resource} "{name}" is forbidden: {why}', name=name, kind=plural, group=group)


_forbidden = forbidden


def default_class(classes: list[Obj]) -> Obj | None:
    """The globalDefault class (the lowest value when, against the rules, there are several)."""
    defaults = [pc for pc in classes if pc.get("globalDefault")]
    return min(defaults, key=lambda pc: int(pc.get("value") or 0)) if defaults else None


def admit_create(kind: str, obj: Obj, priority_classes: PriorityClasses,
                 storage_classes: StorageClasses | None = None,
                 limit_ranges: LimitRanges | None = None,
                 ingress_classes: IngressClasses | None = None) -> None:
    if kind == "Ingress" and ingress_classes is not None:
        _admit_ingress(obj, ingress_classes)
    elif kind == "Pod":
        if limit_ranges is not None:
            limitranger.mutate_pod(obj, limit_ranges(namespace_of(obj)))
        _admit_pod(obj, priority_classes)
    elif kind == "PriorityClass":
        _admit_priority_class(obj, priority_classes, updating=False)
    elif kind == "PersistentVolumeClaim":
        _protect(obj, PVC_PROTECTION)
        if storage_classes is not None:
            _admit_claim(obj, storage_classes)
    elif kind == "PersistentVolume":
        _protect(obj, PV_PROTECTION)


def _protect(obj: Obj, finalizer: str) -> None:
    finalizers = obj.setdefault("metadata", {}).setdefault("finalizers", [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)


def default_storage_class(classes: list[Obj]) -> Obj | None:
    """storageutil.GetDefaultClass: of the classes marked default, the newest (then by name)."""
    marked = [c for c in classes if is_default_class(c)]
    if not marked:
        return None
    return max(
        marked, key=lambda c: (str((c.get("metadata") or {}).get("creationTimestamp") or ""), name_of(c))
    )


def _admit_claim(pvc: Obj, storage_classes: StorageClasses) -> None:
    spec = pvc.setdefault("spec", {})
    annotations = (pvc.get("metadata") or {}).get("annotations") or {}
    if spec.get("storageClassName") is not None or BETA_CLASS_ANNOTATION in annotations:
        return
    default = default_storage_class(storage_classes())
    if default is not None:
        spec["storageClassName"] = name_of(default)


def validate_limits(kind: str, group_resource: str, obj: Obj, old: Obj | None,
                    limit_ranges: LimitRanges) -> None:
    """The LimitRanger's validation of a pod create or a claim create/update (403 when over a limit)."""
    if kind in ("Pod", "PersistentVolumeClaim"):
        why = limitranger.validate(kind, obj, old, limit_ranges(namespace_of(obj)))
        if why:
            raise quota_forbidden(group_resource, name_of(obj), why)


def charge_quotas(group_resource: str, obj: Obj, old: Obj | None, quotas: list[Obj],
                  now: datetime) -> list[Obj]:
    """ResourceQuota: the quotas whose status.used this write raises (403 when one would go over)."""
    return check_request(quotas, operation=UPDATE if old is not None else CREATE,
                         group_resource=group_resource, obj=obj, old=old, now=now)


def _admit_ingress(ingress: Obj, ingress_classes: IngressClasses) -> None:
    if requested_class(ingress) is not None:
        return
    default = default_ingress_class(ingress_classes())
    if default is not None:
        ingress.setdefault("spec", {})["ingressClassName"] = name_of(default)


def admit_update(kind: str, obj: Obj, priority_classes: PriorityClasses) -> None:
    if kind == "PriorityClass":
        _admit_priority_class(obj, priority_classes, updating=True)


def admit_delete(kind: str, name: str) -> None:
    if kind == "PriorityClass" and name in SYSTEM_PRIORITY_CLASSES:
        raise _forbidden(
            f"priorityclasses.{GROUP}", name, "this is a system priority class and cannot be deleted"
        )


def _admit_pod(pod: Obj, priority_classes: PriorityClasses) -> None:
    spec = pod.setdefault("spec", {})
    class_name = str(spec.get("priorityClassName") or "")
    if class_name:
        pc = next((c for c in priority_classes() if name_of(c) == class_name), None)
        if pc is None:
            raise _forbidden("pods", name_of(pod), f"no PriorityClass with name {class_name} was found")
    else:
        pc = default_class(priority_classes())
        if pc is not None:
            spec["priorityClassName"] = name_of(pc)
    priority = int(pc.get("value") or 0) if pc is not None else 0
    policy = str((pc or {}).get("preemptionPolicy") or PREEMPT_LOWER)
    given = spec.get("priority")
    if given is not None and given != priority:
        raise _forbidden(
            "pods",
            name_of(pod),
            f"the integer value of priority ({given}) must not be provided in pod spec; "
            f"priority admission controller computed {priority} from the given PriorityClass name",
        )
    given_policy = spec.get("preemptionPolicy")
    if given_policy is not None and given_policy != policy:
        raise _forbidden(
            "pods",
            name_of(pod),
            f"the string value of PreemptionPolicy ({given_policy}) must not be "
            f"provided in pod spec; priority admission controller computed {policy} from the given "
            "PriorityClass name",
        )
    spec["priority"] = priority
    spec["preemptionPolicy"] = policy


def _admit_priority_class(pc: Obj, priority_classes: PriorityClasses, *, updating: bool) -> None:
    if not pc.get("globalDefault"):
        return
    current = default_class(priority_classes())
    if current is not None and not (updating and name_of(current) == name_of(pc)):
        raise _forbidden(
            f"priorityclasses.{GROUP}",
            name_of(pc),
            f"PriorityClass {name_of(current)} is already marked as default. Only one default can exist",
        )
