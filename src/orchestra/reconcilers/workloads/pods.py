"""Pods from templates, and the pod bookkeeping every workload controller shares.

Owns:
  * `pod_from_template` — kube's GetPodFromTemplate: labels, annotations, finalizers and spec from
    the template, a controller ownerReference (controller=true, blockOwnerDeletion=true), a name
    or generateName `<owner>-`, extra labels (pod-template-hash, controller-revision-hash, ...);
  * `PodControl` — create / delete with the events kube's controllers emit
    (SuccessfulCreate "Created pod: web-abc12", FailedCreate, SuccessfulDelete, FailedDelete);
  * `claim` — kube's ControllerRefManager: adopt orphans matching the selector (a patch that adds
    the controller ownerReference, carrying the resourceVersion read) and release owned objects
    that no longer match (a patch that removes it);
  * `slow_start` — create in batches of 1, 2, 4, ... stopping at the first failing batch;
  * `deletion_order` — kube's ActivePods ordering of scale-down victims.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

from orchestra.api.errors import ApiError, Conflict, NotFound
from orchestra.api.machinery.selectors import LabelSelector
from orchestra.api.registry import ResourceType
from orchestra.client.base import Client
from orchestra.controller import NORMAL, WARNING, EventRecorder
from orchestra.objects import (
    Obj,
    controller_ref,
    deep_copy,
    is_pod_ready,
    is_terminating,
    meta,
    new_controller_ref,
    parse_time,
    status,
)
from orchestra.reconcilers.workloads.common import ready_since, restart_count

log = logging.getLogger("orchestra.reconcilers.workloads")

BURST_REPLICAS = 500  # kube's ReplicaSet burstReplicas: most creates/deletes in one sync
SLOW_START_INITIAL_BATCH = 1
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def pod_from_template(template: Obj, owner: Obj, *, name: str | None = None, generate_name: str | None = None,
                      labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> Obj:
    """A new Pod object for `owner` from its pod template (the template is copied, never shared)."""
    t = deep_copy(template or {})
    tm = t.get("metadata") or {}
    pm: Obj = {"namespace": meta(owner).get("namespace")}
    if name:
        pm["name"] = name
    else:
        pm["generateName"] = generate_name or f"{meta(owner)['name']}-"
    pod_labels = {**(tm.get("labels") or {}), **(labels or {})}
    pod_annotations = {**(tm.get("annotations") or {}), **(annotations or {})}
    if pod_labels:
        pm["labels"] = pod_labels
    if pod_annotations:
        pm["annotations"] = pod_annotations
    if tm.get("finalizers"):
        pm["finalizers"] = tm["finalizers"]
    pm["ownerReferences"] = [new_controller_ref(owner)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pm, "spec": t.get("spec") or {}}


class PodControl:
    """Creates and deletes a controller's objects (pods by default), recording kube's events."""

    def __init__(
        self, client: Client, recorder: EventRecorder, rt: ResourceType, *, noun: str = "pod"
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.rt = rt
        self.noun = noun

    async def create(self, owner: Obj, obj: Obj) -> Obj:
        try:
            created = await self.client.create(self.rt, meta(owner).get("namespace"), obj)
        except ApiError as exc:
            self.recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {exc}")
            raise
        self.recorder.event(
            owner, NORMAL, "SuccessfulCreate", f"Created {self.noun}: {meta(created)['name']}"
        )
        return created

    async def delete(self, owner: Obj, obj: Obj, *, propagation_policy: str | None = None) -> Obj | None:
        """Delete obj (precondition: its uid). NotFound counts as done; returns what delete returned."""
        m = meta(obj)
        try:
            out = await self.client.delete(self.rt, m.get("namespace"), m["name"], uid=m.get("uid"),
                                           propagation_policy=propagation_policy)
        except NotFound:
            return None  # already gone: what we wanted
        except Conflict:
            return None  # a different object of that name now: not ours to delete
        except ApiError as exc:
            self.recorder.event(owner, WARNING, "FailedDelete", f"Error deleting: {exc}")
            raise
        self.recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted {self.noun}: {m['name']}")
        return out


async def slow_start(
    count: int, create: Callable[[int], Awaitable[object]]
) -> tuple[int, BaseException | None]:
    """kube's slowStartBatch: call create(i) for i in range(count) in batches of 1, 2, 4, ...;
    stop after a batch with a failure. Returns (successes, first error)."""
    started = succeeded = 0
    batch = min(count, SLOW_START_INITIAL_BATCH)
    errors: list[BaseException] = []

    async def one(i: int) -> None:
        nonlocal succeeded
        try:
            await create(i)
            succeeded += 1
        except ApiError as exc:
            errors.append(exc)

    while batch > 0:
        async with trio.open_nursery() as nursery:
            for i in range(started, started + batch):
                nursery.start_soon(one, i)
        started += batch
        if errors:
            break
        batch = min(2 * batch, count - started)
    return succeeded, errors[0] if errors else None


# --- adoption ------------------------------------------------------------------------------------


async def claim(client: Client, rt: ResourceType, owner: Obj, selector: LabelSelector, objs: Sequence[Obj],
                *, on_write: Callable[[Obj], None] | None = None) -> list[Obj]:
    """kube's ClaimObjects: return the objects `owner` controls after adopting matching orphans
    and releasing owned ones that stopped matching. Never adopts while the owner is deleting."""
    uid = meta(owner).get("uid")
    claimed: list[Obj] = []
    for obj in objs:
        ref = controller_ref(obj)
        matches = not selector.empty and selector.matches(meta(obj).get("labels"))
        if ref is not None:
            if ref.get("uid") != uid:
                continue  # someone else's
            if matches:
                claimed.append(obj)
            elif not is_terminating(obj):
                await _release(client, rt, obj, uid, on_write)
            continue
        if not matches or is_terminating(obj) or is_terminating(owner):
            continue
        adopted = await _adopt(client, rt, owner, obj, on_write)
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _adopt(client: Client, rt: ResourceType, owner: Obj, obj: Obj,
                 on_write: Callable[[Obj], None] | None) -> Obj | None:
    m = meta(obj)
    refs = [*(m.get("ownerReferences") or []), new_controller_ref(owner)]
    patch = {"metadata": {"ownerReferences": refs, "resourceVersion": m["resourceVersion"], "uid": m["uid"]}}
    try:
        out = await client.patch(rt, m.get("namespace"), m["name"], patch)
    except NotFound:
        return None  # gone meanwhile
    if on_write:
        on_write(out)
    return out


async def _release(client: Client, rt: ResourceType, obj: Obj, uid: str | None,
                   on_write: Callable[[Obj], None] | None) -> None:
    m = meta(obj)
    refs = [r for r in m.get("ownerReferences") or [] if r.get("uid") != uid]
    patch = {
        "metadata": {
            "ownerReferences": refs or None,
            "resourceVersion": m["resourceVersion"],
            "uid": m["uid"],
        }
    }
    try:
        out = await client.patch(rt, m.get("namespace"), m["name"], patch)
    except NotFound:
        return  # gone meanwhile: nothing to release
    if on_write:
        on_write(out)


# --- victim choice -------------------------------------------------------------------------------

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_cost(pod: Obj) -> int:
    try:
        return int((meta(pod).get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


def deletion_key(pod: Obj) -> tuple[object, ...]:
    """Sort key: pods that sort first are deleted first (kube's controller.ActivePods Less):
    unassigned < assigned; Pending < Unknown < Running; not ready < ready; lower
    pod-deletion-cost; ready for less time; more restarts; newer creation."""
    ready = is_pod_ready(pod)
    since = ready_since(pod) if ready else None
    created = parse_time(meta(pod).get("creationTimestamp"))
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(status(pod).get("phase", "Pending"), 0),
        1 if ready else 0,
        _deletion_cost(pod),
        -(since.timestamp()) if since else 0.0,
        -restart_count(pod),
        -(created.timestamp()) if created else 0.0,
        # same creation second (timestamps have second resolution): the later name/rv is newer
        -int(meta(pod).get("resourceVersion") or 0),
    )


def deletion_order(pods: Sequence[Obj]) -> list[Obj]:
    return sorted(pods, key=deletion_key)

