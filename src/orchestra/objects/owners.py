"""Owner references (metadata.ownerReferences): who controls an object, and the reference a
controller puts on what it creates.

Owns: `controller_ref` (metav1.GetControllerOf: the reference with controller=true, or None),
`new_controller_ref` (metav1.NewControllerRef: controller and blockOwnerDeletion true),
`owner_uids` (the uids an object's references name: the garbage collector's graph edges).
Must not import: anything from orchestra (every layer imports this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestra.objects.meta import Obj, as_list, meta


def controller_ref(obj: Mapping[str, Any] | None) -> Obj | None:
    """metav1.GetControllerOf: the first owner reference with `controller: true`, or None."""
    for ref in as_list(meta(obj).get("ownerReferences")):
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Mapping[str, Any], *, api_version: str | None = None,
                       kind: str | None = None) -> Obj:
    """metav1.NewControllerRef: the reference a controller sets on what it creates. apiVersion
    and kind default to the owner's own (objects from a cache may lack them: pass them then)."""
    m = meta(owner)
    return {"apiVersion": api_version or owner["apiVersion"], "kind": kind or owner["kind"],
            "name": m["name"], "uid": m["uid"], "controller": True, "blockOwnerDeletion": True}


def owner_uids(obj: Mapping[str, Any] | None) -> list[str]:
    """The uids of the object's owner references (references without one are skipped)."""
    refs = as_list(meta(obj).get("ownerReferences"))
    return [r["uid"] for r in refs if isinstance(r, dict) and r.get("uid")]
