"""StatefulSet volumeClaimTemplates (kube's stateful_pod_control createPersistentVolumeClaims and
updateStorage).

Owns: the claims of ordinal i — `<template name>-<sts name>-<i>`, labels from the template plus the
set's selector matchLabels — created before the pod when missing (an existing claim is reused: that
is how a recreated pod gets its data back; one still being deleted holds the pod back until it is
gone and made anew), with kube's SuccessfulCreate / FailedCreate events; the pod's volumes that
point at them (a template volume of the same name is replaced); and their owners under
persistentVolumeClaimRetentionPolicy (kube's updateClaimOwnerRefForSetAndPod), which the garbage
collector acts on: whenDeleted Delete makes the StatefulSet an owner (the claims go with it), and
whenScaled Delete makes a condemned pod (ordinal ≥ replicas) the owner instead, just before it is
deleted (its claims go with it); a claim reused for a live ordinal loses a stale pod owner.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from orchestra.api.errors import AlreadyExists, ApiError, NotFound
from orchestra.api.registry import ResourceType
from orchestra.client.base import Client
from orchestra.controller import NORMAL, WARNING, EventRecorder, TemporaryError
from orchestra.objects import Obj, deep_copy, meta, new_controller_ref, spec


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
    if _policy(sts)[0] == "Delete":
        m["ownerReferences"] = [_set_owner(sts)]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": m,
            "spec": deep_copy(template.get("spec") or {})}


def _policy(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled), each Retain unless Delete."""
    retention = spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return (str(retention.get("whenDeleted") or "Retain"), str(retention.get("whenScaled") or "Retain"))


def _set_owner(sts: Obj) -> Obj:
    return {**new_controller_ref(sts), "controller": True}


def wanted_owners(claim: Obj, sts: Obj, pod: Obj | None, condemned: bool) -> list[Obj]:
    """The claim's ownerReferences under the set's retention policy: references to other objects
    are kept; the set's and pods' are what the policy says for a live or condemned ordinal."""
    when_deleted, when_scaled = _policy(sts)
    set_uid = meta(sts).get("uid")
    refs = [r for r in meta(claim).get("ownerReferences") or []
            if r.get("uid") != set_uid and not (r.get("kind") == "Pod" and r.get("apiVersion") == "v1")]
    if condemned and when_scaled == "Delete":
        if pod is not None:
            m = meta(pod)
            refs.append({"apiVersion": "v1", "kind": "Pod", "name": m["name"], "uid": m["uid"]})
    elif when_deleted == "Delete":
        refs.append(_set_owner(sts))
    return refs


async def update_claim_owners(client: Client, rt: ResourceType, sts: Obj, ordinal: int, pod: Obj | None,
                              *, condemned: bool) -> None:
    """Give each claim of `ordinal` the owners `wanted_owners` says (a missing claim is skipped)."""
    for template in templates(sts):
        try:
            claim = await client.get(rt, meta(sts).get("namespace"), claim_name(template, sts, ordinal))
        except NotFound:
            continue
        await _set_owners(client, rt, claim, wanted_owners(claim, sts, pod, condemned))


async def _set_owners(client: Client, rt: ResourceType, claim: Obj, refs: list[Obj]) -> None:
    if refs == (meta(claim).get("ownerReferences") or []) or meta(claim).get("deletionTimestamp"):
        return
    updated = deep_copy(claim)
    updated["metadata"]["ownerReferences"] = refs
    await client.update(rt, updated)  # a Conflict re-queues the set


def add_claim_volumes(pod: Obj, sts: Obj, ordinal: int) -> None:
    """updateStorage: one persistentVolumeClaim volume per template, replacing a same-named one."""
    wanted = {meta(t).get("name"): claim_name(t, sts, ordinal) for t in templates(sts)}
    if not wanted:
        return
    pod_spec = pod.setdefault("spec", {})
    kept = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in wanted]
    pod_spec["volumes"] = [
        *({"name": n, "persistentVolumeClaim": {"claimName": c}} for n, c in wanted.items()),
        *kept,
    ]


async def ensure_claims(
    client: Client, rt: ResourceType, recorder: EventRecorder, sts: Obj, ordinal: int
) -> None:
    """Create the missing claims of `ordinal` (an ApiError other than AlreadyExists propagates:
    the pod must not be created without its storage)."""
    pod_name = f"{meta(sts)['name']}-{ordinal}"
    for template in templates(sts):
        claim = claim_for(template, sts, ordinal)
        name = claim["metadata"]["name"]
        try:
            await client.create(rt, meta(sts).get("namespace"), claim)
        except AlreadyExists:
            await _reuse(client, rt, sts, name)
            continue
        except ApiError as exc:
            recorder.event(
                sts,
                WARNING,
                "FailedCreate",
                f"create Claim {name} for Pod {pod_name} in "
                f"StatefulSet {meta(sts)['name']} failed error: {exc}",
            )
            raise
        recorder.event(sts, NORMAL, "SuccessfulCreate",
                       f"create Claim {name} Pod {pod_name} in StatefulSet {meta(sts)['name']} success")


async def _reuse(client: Client, rt: ResourceType, sts: Obj, name: str) -> None:
    """A claim kept from an earlier pod of this ordinal: the new pod gets its data. One being deleted
    (a scaled-down pod's claim under whenScaled Delete) must go first: the pod waits, then the claim
    is made anew. A stale pod owner is dropped, so the collector does not take the claim later."""
    try:
        claim = await client.get(rt, meta(sts).get("namespace"), name)
    except NotFound as exc:
        raise TemporaryError(f"claim {name} went away while being reused") from exc
    if meta(claim).get("deletionTimestamp"):
        raise TemporaryError(f"pvc {name} is being deleted", delay=1.0)
    await _set_owners(client, rt, claim, wanted_owners(claim, sts, None, condemned=False))
