"""ReplicaSet controller (kube's pkg/controller/replicaset).

Owns: keeping `spec.replicas` active pods for each ReplicaSet —
  * claims pods: adopts orphans matching the selector, releases owned pods that stopped matching;
  * creates missing pods (generateName `<rs>-`) in slow-start batches of 1, 2, 4, ... (at most 500
    a sync), deletes surplus pods in kube's victim order (pods.deletion_key);
  * status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (minReadySeconds,
    from the Ready condition's lastTransitionTime), observedGeneration, and the ReplicaFailure
    condition (FailedCreate / FailedDelete) while creates or deletes fail;
  * events SuccessfulCreate / SuccessfulDelete ("Created pod: web-abc12").
Not built: kube's co-location rank (victims on nodes running more replicas first).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestra.api.errors import ApiError
from orchestra.client.base import Client
from orchestra.controller import Result, split_key
from orchestra.objects import (
    Obj,
    format_time,
    is_pod_ready,
    is_terminating,
    labels_match,
    labels_of,
    meta,
    ready_condition,
    remove_condition,
    set_condition,
    spec,
    status,
)
from orchestra.reconcilers.workloads.base import WorkloadController
from orchestra.reconcilers.workloads.common import (
    int_or,
    is_pod_active,
    is_pod_available,
    seconds_until_available,
)
from orchestra.reconcilers.workloads.pods import (
    BURST_REPLICAS,
    claim,
    deletion_order,
    pod_from_template,
    slow_start,
)


class ReplicaSetController(WorkloadController):
    name = "replicaset-controller"
    kind = "ReplicaSet"

    def __init__(self, client: Client, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)

    def owner_keys(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        # Our own status writes (and the Deployment's annotation bookkeeping) change nothing a sync
        # reads; the spec (generation) and deletion do. Skipping them halves the syncs of a rollout.
        if event_type == "MODIFIED" and old is not None and new is not None and (
                meta(old).get("generation"), meta(old).get("deletionTimestamp")) == (
                meta(new).get("generation"), meta(new).get("deletionTimestamp")):
            return ()
        return super().owner_keys(event_type, old, new)

    def owners_of_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        # A pod update that changes nothing a sync reads (binding, container states, IPs) does not
        # wake the ReplicaSet: at a thousand replicas each sync walks every pod, and a pod's start
        # is a handful of such updates. kube enqueues on every update; the outcome is the same.
        if (
            event_type == "MODIFIED"
            and old is not None
            and new is not None
            and _sync_view(old) == _sync_view(new)
        ):
            return ()
        return super().owners_of_pod(event_type, old, new)

    async def reconcile(self, key: str) -> Result | None:
        await self.expect.settle(key)
        ns, name = split_key(key)
        rs = self.owners.get(ns, name)
        if rs is None:
            return None
        selector = self.selector_of(rs)
        candidates = [p for p in self.pods_of(rs) if is_pod_active(p)]
        pods = await claim(self.client, self.pods.rt, rs, selector, candidates,
                           on_write=lambda o: self.expect.wrote(key, self.pods, o))
        failure: tuple[str, str] | None = None
        deleted: set[str] = set()
        if not is_terminating(rs):
            failure = await self._manage(key, rs, pods, deleted)
        # Status counts the pods this sync started from (the writes above re-queue us) minus those it
        # just deleted. kube counts those too, until its next sync; a Deployment reading that status
        # mid-rollout would take them for available pods and scale an old ReplicaSet down too far.
        return await self._sync_status(
            key, rs, [p for p in pods if meta(p).get("uid") not in deleted], failure
        )

    async def _manage(self, key: str, rs: Obj, pods: list[Obj], deleted: set[str]) -> tuple[str, str] | None:
        diff = len(pods) - int_or(spec(rs).get("replicas"), 1)
        if diff < 0:
            want = min(-diff, BURST_REPLICAS)
            template = spec(rs).get("template") or {}

            async def create(_: int) -> None:
                pod = await self.pod_control.create(rs, pod_from_template(template, rs))
                self.expect.wrote(key, self.pods, pod)

            _, error = await slow_start(want, create)
            if error is not None:
                return "FailedCreate", str(error)
        elif diff > 0:
            for victim in deletion_order(pods)[:min(diff, BURST_REPLICAS)]:
                try:
                    out = await self.pod_control.delete(rs, victim)
                except ApiError as exc:
                    return "FailedDelete", str(exc)
                deleted.add(meta(victim).get("uid", ""))
                if out is None:
                    self.expect.deleted(victim)
                else:
                    self.expect.wrote(key, self.pods, out)
                    self.expect.deleted(victim)
        return None

    async def _sync_status(
        self, key: str, rs: Obj, pods: list[Obj], failure: tuple[str, str] | None
    ) -> Result | None:
        now = self.clock()
        min_ready = int_or(spec(rs).get("minReadySeconds"), 0)
        template_labels = ((spec(rs).get("template") or {}).get("metadata") or {}).get("labels") or {}
        labeled = ready = available = 0
        for p in pods:  # one pass: at a thousand replicas this loop is the controller's cost
            labeled += labels_match(template_labels, labels_of(p))
            if is_pod_ready(p):
                ready += 1
                available += min_ready <= 0 or is_pod_available(p, min_ready, now)
        new_status: Obj = {**(rs.get("status") or {})}
        new_status.update({
            "replicas": len(pods),
            "fullyLabeledReplicas": labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": meta(rs).get("generation", 0),
        })
        if failure is not None:
            set_condition(new_status, {"type": "ReplicaFailure", "status": "True", "reason": failure[0],
                                       "message": failure[1], "lastTransitionTime": format_time(now)})
        else:
            remove_condition(new_status, "ReplicaFailure")
        await self.write_status(key, rs, new_status)
        if failure is not None:
            return Result(requeue_after=1.0)
        wait = seconds_until_available(pods, min_ready, now)
        return Result(requeue_after=wait) if wait is not None else None


def _sync_view(pod: Obj) -> tuple[Any, ...]:
    """What a sync reads from a pod: claim (labels, owners, deletion), activity, readiness."""
    m = meta(pod)
    ready = ready_condition(pod) or {}
    return (m.get("labels"), m.get("ownerReferences"), m.get("deletionTimestamp"), status(pod).get("phase"),
            ready.get("status"), ready.get("lastTransitionTime"))
