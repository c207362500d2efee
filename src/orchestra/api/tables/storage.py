"""Row printers for the storage kinds: PersistentVolume, PersistentVolumeClaim, StorageClass
(printPersistentVolume, printPersistentVolumeClaim, printStorageClass of kube 1.32).

Owns: those kinds' cells and kube's access-mode abbreviations (class helpers: api/policy/storageclass.py).
Must not import: the other printers, the column definitions, or the Table envelope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.api.policy.storageclass import claim_class, is_default_class
from orchestra.api.tables.format import Cell, since
from orchestra.objects import Obj, as_dict
from orchestra.objects.quantity import QuantityError, format_quantity

_MODE_ABBREV = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes(modes: Any) -> str:
    """helper.GetAccessModesAsString: a fixed order, duplicates dropped."""
    given = set(modes) if isinstance(modes, list) else set()
    return ",".join(short for mode, short in _MODE_ABBREV if mode in given)


def _quantity_cell(value: Any) -> str:
    if value is None:
        return "0"  # an absent resource.Quantity prints as its zero value
    try:
        return format_quantity(value)
    except QuantityError:
        return str(value)


def _phase(obj: Obj, meta: Obj) -> str:
    if meta.get("deletionTimestamp"):
        return "Terminating"
    return str(as_dict(obj.get("status")).get("phase") or "")


def print_pv(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec = as_dict(obj.get("metadata")), as_dict(obj.get("spec"))
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace') or ''}/{ref.get('name') or ''}" if isinstance(ref, dict) else ""
    return [
        str(meta.get("name", "")),
        _quantity_cell(as_dict(spec.get("capacity")).get("storage")),
        access_modes(spec.get("accessModes")),
        str(spec.get("persistentVolumeReclaimPolicy") or ""),
        _phase(obj, meta),
        claim,
        claim_class(obj),
        str(spec.get("volumeAttributesClassName") or "<unset>"),
        str(as_dict(obj.get("status")).get("reason") or ""),
        since(meta.get("creationTimestamp"), now),
        str(spec.get("volumeMode") or "<unset>"),
    ]


def print_pvc(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = as_dict(obj.get("metadata")), as_dict(obj.get("spec")), as_dict(obj.get("status"))
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(status.get("accessModes"))
        capacity = _quantity_cell(as_dict(status.get("capacity")).get("storage"))
    return [
        str(meta.get("name", "")),
        _phase(obj, meta),
        str(spec.get("volumeName") or ""),
        capacity,
        modes,
        claim_class(obj),
        str(spec.get("volumeAttributesClassName") or "<unset>"),
        since(meta.get("creationTimestamp"), now),
        str(spec.get("volumeMode") or "<unset>"),
    ]


def print_storage_class(obj: Obj, now: datetime) -> list[Cell]:
    meta = as_dict(obj.get("metadata"))
    name = str(meta.get("name", "")) + (" (default)" if is_default_class(obj) else "")
    return [
        name,
        str(obj.get("provisioner") or ""),
        str(obj.get("reclaimPolicy") or "Delete"),
        str(obj.get("volumeBindingMode") or "Immediate"),
        bool(obj.get("allowVolumeExpansion")),
        since(meta.get("creationTimestamp"), now),
    ]
