"""StatefulSet volumeClaimTemplates (kube's stateful_pod_control createPersistentVolumeClaims and
updateStorage).

Owns: the claims of ordinal i — `<template name>-<sts name>-<i>`, labels from the template plus the
set's selector matchLabels, ownerless under the default retention policy (whenDeleted: Retain), owned
by the StatefulSet when whenDeleted is Delete (so the garbage collector removes them with it) —
created before the pod when missing (an existing claim is reused: that is how a recreated pod gets
its data back), with kube's SuccessfulCreate / FailedCreate events; and the pod's volumes that point
at them (a template volume of the same name is replaced).
Not done: whenScaled: Delete (claims of condemned ordinals are always kept).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from orchestra.api.errors import AlreadyExists, ApiError
from orchestra.api.objects import deep_copy
from orchestra.api.registry import ResourceType
from orchestra.client.base import Client, Obj
from orchestra.controller import NORMAL, WARNING, EventRecorder
from orchestra.reconcilers.workloads.common import meta, owner_reference, spec


def templates(sts: Obj) -> list[Obj]:
    return [t for t in spec(sts).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def claim_name(template: Obj, sts: Obj, ordinal: int) -> str:
    return f"{meta(template).get('name')}-{meta(sts)['name']}-{ordinal}"


def claim_for(template: Obj, sts: Obj, ordinal: int) -> Obj:
    selector_labels = (spec(sts).get("selector") or {}).get("matchLabels") or {}
    m: Obj = {"name": claim_name(template, sts, ordinal), "namespace": meta(sts).get("namespace"),
              "labels": {**(meta(template).get("labels") or {}), **selector_labels}}
    if meta(template).get("annotations"):
        m["annotations"] = dict(meta(template)["annotations"])
    retention = spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    if retention.get("whenDeleted") == "Delete":
        m["ownerReferences"] = [{**owner_reference(sts), "controller": True}]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": m,
            "spec": deep_copy(template.get("spec") or {})}


def add_claim_volumes(pod: Obj, sts: Obj, ordinal: int) -> None:
    """updateStorage: one persistentVolumeClaim volume per template, replacing a same-named one."""
    wanted = {meta(t).get("name"): claim_name(t, sts, ordinal) for t in templates(sts)}
    if not wanted:
        return
    pod_spec = pod.setdefault("spec", {})
    kept = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in wanted]
    pod_spec["volumes"] = [*({"name": n, "persistentVolumeClaim": {"claimName": c}} for n, c in wanted.items()), *kept]


async def ensure_claims(client: Client, rt: ResourceType, recorder: EventRecorder, sts: Obj, ordinal: int) -> None:
    """Create the missing claims of `ordinal` (an ApiError other than AlreadyExists propagates:
    the pod must not be created without its storage)."""
    pod_name = f"{meta(sts)['name']}-{ordinal}"
    for template in templates(sts):
        claim = claim_for(template, sts, ordinal)
        name = claim["metadata"]["name"]
        try:
            await client.create(rt, meta(sts).get("namespace"), claim)
        except AlreadyExists:
            continue  # kept from an earlier pod of this ordinal: reuse it
        except ApiError as exc:
            recorder.event(sts, WARNING, "FailedCreate",
                           f"create Claim {name} for Pod {pod_name} in StatefulSet {meta(sts)['name']} failed error: {exc}")
            raise
        recorder.event(sts, NORMAL, "SuccessfulCreate",
                       f"create Claim {name} Pod {pod_name} in StatefulSet {meta(sts)['name']} success")
