"""Storage kinds: core/v1 PersistentVolumeClaim and PersistentVolume, storage.k8s.io/v1 StorageClass —
the essential rules of kube's ValidatePersistentVolumeClaim(Update), ValidatePersistentVolume(Update)
and ValidateStorageClass(Update), with kube's field paths and wording.

Not checked (deliberately small): the Go `cmp.Diff` kube appends to the PVC immutability message, the
dataSource / volumeAttributesClass rules, and the per-plugin volume source fields beyond hostPath.path.
Owns: those three validators.
Must not import: the pod, workload, service or policy validators, or the dispatch in __init__.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import forbidden, invalid, not_supported, required, required_one_of
from orchestra.api.machinery.names import is_dns1123_subdomain, is_qualified_name
from orchestra.api.policy.storageclass import BETA_CLASS_ANNOTATION
from orchestra.api.policy.validation.affinity import validate_node_selector
from orchestra.api.policy.validation.meta import validate_label_selector, validate_object_meta
from orchestra.objects import Obj, as_dict, as_list
from orchestra.objects.quantity import Quantity, QuantityError

ACCESS_MODES = (
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
)  # sorted, like sets.List
VOLUME_MODES = ("Block", "Filesystem")
PV_RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
SC_RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
PVC_IMMUTABLE_MSG = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound "
    "claims"
)
# The PersistentVolumeSource members orchestra knows by name; a PV must carry exactly one.
PV_SOURCES = (
    "hostPath", "local", "nfs", "csi", "iscsi", "fc", "rbd", "cephfs", "cinder", "flexVolume", "flocker",
    "gcePersistentDisk", "awsElasticBlockStore", "azureDisk", "azureFile", "glusterfs",
    "photonPersistentDisk", "portworxVolume", "quobyte", "scaleIO", "storageos", "vsphereVolume",
)  # fmt: skip


def _access_modes(modes: Any, path: str, missing: str) -> list[Cause]:
    if not as_list(modes):
        return [required(path, missing)]
    return [not_supported(path, m, ACCESS_MODES) for m in as_list(modes) if m not in ACCESS_MODES]


def _storage(value: Any, path: str) -> list[Cause]:
    if value is None:
        return [required(path, "")]
    try:
        amount = Quantity.parse(value)
    except QuantityError:
        return []  # the schema check already reported the malformed quantity
    # no upper bound: kube accepts any positive size (see orchestra.objects.quantity)
    return [] if amount.value > 0 else [invalid(path, str(amount), "must be greater than zero")]


def _volume_mode(spec: Obj, path: str) -> list[Cause]:
    mode = spec.get("volumeMode")
    return [not_supported(path, mode, VOLUME_MODES)] if mode is not None and mode not in VOLUME_MODES else []


def _class_name(spec: Obj, path: str) -> list[Cause]:
    name = spec.get("storageClassName")
    return [invalid(path, name, m) for m in is_dns1123_subdomain(str(name))] if name else []


def validate_pvc_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    """ValidatePersistentVolumeClaimSpec (also for StatefulSet volumeClaimTemplates)."""
    errs = _access_modes(spec.get("accessModes"), f"{path}.accessModes", "at least 1 access mode is required")
    if spec.get("selector") is not None:
        errs += validate_label_selector(spec.get("selector"), f"{path}.selector")
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    errs += _storage(requests.get("storage"), f"{path}.resources[storage]")
    errs += _class_name(spec, f"{path}.storageClassName")
    return errs + _volume_mode(spec, f"{path}.volumeMode")


def _comparable_pvc_spec(new: Obj, old: Obj) -> tuple[Obj, Obj]:
    """The two specs with what kube lets change blanked out: requests.storage of a bound claim, a
    volumeName set for the first time (the binder does that once), a storageClassName set where the
    claim had none (the binder's retroactive default class)."""
    new_spec, old_spec = dict(as_dict(new.get("spec"))), dict(as_dict(old.get("spec")))
    old_annotations = as_dict(as_dict(old.get("metadata")).get("annotations"))
    if old_spec.get("storageClassName") is None and BETA_CLASS_ANNOTATION not in old_annotations:
        new_spec.pop("storageClassName", None)  # a class may be set once (retroactive default class)
        old_spec.pop("storageClassName", None)
    if not old_spec.get("volumeName"):
        old_spec.pop("volumeName", None)
        new_spec.pop("volumeName", None)
    if as_dict(new.get("status")).get("phase") == "Bound":
        for spec in (new_spec, old_spec):
            spec["resources"] = {**as_dict(spec.get("resources")), "requests": {
                **as_dict(as_dict(spec.get("resources")).get("requests")), "storage": None}}
    return new_spec, old_spec


def validate_pvc(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += validate_pvc_spec(as_dict(obj.get("spec")))
    if old is not None:
        new_spec, old_spec = _comparable_pvc_spec(obj, old)
        if new_spec != old_spec:
            errs.append(forbidden("spec", PVC_IMMUTABLE_MSG))
    return errs


def validate_pv(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    spec = as_dict(obj.get("spec"))
    errs += _access_modes(spec.get("accessModes"), "spec.accessModes", "must specify at least 1 access mode")
    if not as_dict(spec.get("capacity")):
        errs.append(required("spec.capacity", ""))
    else:
        errs += _storage(as_dict(spec.get("capacity")).get("storage"), "spec.capacity[storage]")
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy is not None and policy not in PV_RECLAIM_POLICIES:
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, PV_RECLAIM_POLICIES))
    errs += _class_name(spec, "spec.storageClassName")
    errs += _volume_mode(spec, "spec.volumeMode")
    sources = [k for k in PV_SOURCES if spec.get(k) is not None]
    if not sources:
        errs.append(required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        errs.append(forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    if "hostPath" in sources and not as_dict(spec.get("hostPath")).get("path"):
        errs.append(required("spec.hostPath.path", ""))
    if spec.get("nodeAffinity") is not None:  # validateVolumeNodeAffinity
        node_affinity = as_dict(spec["nodeAffinity"])
        if node_affinity.get("required") is None:
            errs.append(required("spec.nodeAffinity.required", "must specify required node constraints"))
        else:
            errs += validate_node_selector(node_affinity["required"], "spec.nodeAffinity.required")
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        if {k: spec.get(k) for k in PV_SOURCES} != {k: old_spec.get(k) for k in PV_SOURCES}:
            errs.append(
                forbidden(
                    "spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation"
                )
            )
        if old_spec.get("nodeAffinity") is not None and spec.get("nodeAffinity") != old_spec.get(
            "nodeAffinity"
        ):
            errs.append(forbidden("spec.nodeAffinity", "field is immutable"))
    return errs


def validate_storage_class(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    provisioner = str(obj.get("provisioner") or "")
    if not provisioner:
        errs.append(required("provisioner", ""))
    else:
        errs += [invalid("provisioner", provisioner, m) for m in is_qualified_name(provisioner.lower())]
    policy = obj.get("reclaimPolicy")
    if policy is not None and policy not in SC_RECLAIM_POLICIES:
        errs.append(not_supported("reclaimPolicy", policy, SC_RECLAIM_POLICIES))
    errs += required_one_of(obj.get("volumeBindingMode"), "volumeBindingMode", BINDING_MODES)
    if old is not None:
        if as_dict(obj.get("parameters")) != as_dict(old.get("parameters")):
            errs.append(forbidden("parameters", "updates to parameters are forbidden."))
        if obj.get("provisioner") != old.get("provisioner"):
            errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
        if obj.get("reclaimPolicy") != old.get("reclaimPolicy"):
            errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if obj.get("volumeBindingMode") != old.get("volumeBindingMode"):
            errs.append(invalid("volumeBindingMode", obj.get("volumeBindingMode"), "field is immutable"))
    return errs
