"""Storage-class helpers shared by the printers, admission, the scheduler and the volume controller.

Owns: `claim_class` (kube's helper.GetPersistentVolumeClaimClass / GetPersistentVolumeClass: the beta
annotation, when present, wins over spec.storageClassName) and `is_default_class`
(storageutil.IsDefaultAnnotation).
Must not import: anything above the api layer.
"""

from __future__ import annotations

from orchestra.objects import Obj, annotations_of

DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def claim_class(obj: Obj) -> str:
    """The storage class of a claim or volume."""
    annotations = annotations_of(obj)
    if BETA_CLASS_ANNOTATION in annotations:
        return str(annotations[BETA_CLASS_ANNOTATION])
    spec = obj.get("spec")
    return str((spec if isinstance(spec, dict) else {}).get("storageClassName") or "")


def is_default_class(obj: Obj) -> bool:
    annotations = annotations_of(obj)
    return any(annotations.get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)
