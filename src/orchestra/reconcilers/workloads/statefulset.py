"""StatefulSet controller (kube's pkg/controller/statefulset).

Owns, per StatefulSet:
  * pods `<sts>-0 .. <sts>-(N-1)` with labels statefulset.kubernetes.io/pod-name,
    apps.kubernetes.io/pod-index and controller-revision-hash `<sts>-<hash>`, hostname = pod
    name and subdomain = spec.serviceName;
  * OrderedReady: create ordinal i only when every lower ordinal is Running and Ready; scale
    down from the highest ordinal, one at a time, only when all others are healthy; Parallel:
    no waiting;
  * RollingUpdate from the highest ordinal down to spec.updateStrategy.rollingUpdate.partition,
    one pod at a time, waiting for the replacement to be healthy; OnDelete: nothing;
  * failed pods are deleted and recreated;
  * volumeClaimTemplates (claims.py): each ordinal's claims are created before its pod and named
    in its volumes; they outlive the pod and, by default, the set (persistentVolumeClaimRetentionPolicy
    whenDeleted / whenScaled Delete hand them to the garbage collector with the set / with a
    scaled-down pod);
  * status: replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas,
    currentRevision, updateRevision, collisionCount, observedGeneration.
Revisions are ControllerRevisions `<sts>-<template hash>` (history.py; `kubectl rollout
history/undo` read and patch them back), named in the pods' controller-revision-hash label and in
status.currentRevision/updateRevision; a pod below the partition that has to be recreated gets the
current revision's template, like kube.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.registry import ResourceType
from orchestra.client.base import Client
from orchestra.controller import Result, registry_of
from orchestra.objects import Obj, is_pod_ready, is_terminating, meta, name_of, spec, status
from orchestra.reconcilers.workloads.base import WorkloadController
from orchestra.reconcilers.workloads.claims import (
    add_claim_volumes,
    ensure_claims,
    templates,
    update_claim_owners,
)
from orchestra.reconcilers.workloads.common import (
    int_or,
    is_pod_available,
    seconds_until_available,
    template_hash,
)
from orchestra.reconcilers.workloads.history import REVISION_LABEL, RevisionHistory, template_of
from orchestra.reconcilers.workloads.keyed import claim_pods, settled
from orchestra.reconcilers.workloads.pods import pod_from_template

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal(sts: Obj, pod: Obj) -> int | None:
    prefix = f"{meta(sts)['name']}-"
    name = name_of(pod)
    tail = name[len(prefix):] if name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def _revision(pod: Obj) -> str:
    return str((meta(pod).get("labels") or {}).get(REVISION_LABEL) or "")


class StatefulSetController(WorkloadController):
    name = "statefulset-controller"
    kind = "StatefulSet"

    def __init__(self, client: Client, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.history = RevisionHistory(self)

    def update_hash(self, sts: Obj) -> str:
        return template_hash(spec(sts).get("template") or {}, status(sts).get("collisionCount"))

    def update_revision(self, sts: Obj) -> str:
        return f"{meta(sts)['name']}-{self.update_hash(sts)}"

    def _healthy(self, sts: Obj, pod: Obj) -> bool:
        min_ready = int_or(spec(sts).get("minReadySeconds"), 0)
        return (status(pod).get("phase") == "Running" and is_pod_available(pod, min_ready, self.clock())
                and not is_terminating(pod))

    async def reconcile(self, key: str) -> Result | None:
        sts = await settled(self.expect, self.owners, key)
        if sts is None:
            return None
        pods = await claim_pods(self, key, sts)
        by_ord = {o: p for p in pods if (o := ordinal(sts, p)) is not None}
        update_rev = self.update_revision(sts)
        current_rev = str(status(sts).get("currentRevision") or update_rev)
        if not is_terminating(sts):
            await self.history.sync(sts, self.update_hash(sts))
            await self._sync(key, sts, by_ord, update_rev, current_rev)
            in_use = {update_rev, current_rev} | {_revision(p) for p in by_ord.values()}
            await self.history.prune(sts, in_use)
        return await self._status(key, sts, list(by_ord.values()), current_rev, update_rev)

    async def _sync(
        self, key: str, sts: Obj, by_ord: dict[int, Obj], update_rev: str, current_rev: str
    ) -> None:
        n = int_or(spec(sts).get("replicas"), 1)
        monotonic = (spec(sts).get("podManagementPolicy") or "OrderedReady") == "OrderedReady"
        for i in range(n):
            pod = by_ord.get(i)
            if pod is None:
                await self._create(key, sts, i, *self._version_for(sts, i, update_rev, current_rev))
                if monotonic:
                    return
                continue
            if status(pod).get("phase") in ("Failed", "Succeeded") and not is_terminating(pod):
                await self._delete(key, sts, pod)
                if monotonic:
                    return
                continue
            if monotonic and not self._healthy(sts, pod):
                return  # OrderedReady: wait for this ordinal before touching the next
        condemned = sorted((o for o in by_ord if o >= n), reverse=True)
        for o in condemned:
            pod = by_ord[o]
            if is_terminating(pod):
                if monotonic:
                    return
                continue
            if monotonic and any(not self._healthy(sts, p) for i, p in by_ord.items() if i < n):
                return
            if templates(sts):  # whenScaled Delete: the claims go with the pod
                await update_claim_owners(self.client, self._claims_rt(), sts, o, pod, condemned=True)
            await self._delete(key, sts, pod)
            if monotonic:
                return
        if condemned:
            return
        strategy = spec(sts).get("updateStrategy") or {}
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return
        partition = int_or((strategy.get("rollingUpdate") or {}).get("partition"), 0)
        for target in range(n - 1, partition - 1, -1):
            pod = by_ord.get(target)
            if pod is None:
                return
            if _revision(pod) != update_rev and not is_terminating(pod):
                await self._delete(key, sts, pod)
                return
            if not self._healthy(sts, pod):
                return

    def _version_for(self, sts: Obj, i: int, update_rev: str, current_rev: str) -> tuple[str, Obj]:
        """kube's newVersionedStatefulSetPod: below a RollingUpdate partition a pod is made from the
        current revision, otherwise from the update revision (the spec's template)."""
        strategy = spec(sts).get("updateStrategy") or {}
        partition = int_or((strategy.get("rollingUpdate") or {}).get("partition"), 0)
        if (
            current_rev != update_rev
            and (strategy.get("type") or "RollingUpdate") == "RollingUpdate"
            and i < partition
        ):
            for rev in self.history.of(sts):
                if meta(rev).get("name") == current_rev:
                    return current_rev, template_of(rev)
        return update_rev, spec(sts).get("template") or {}

    async def _create(self, key: str, sts: Obj, i: int, rev: str, template: Obj) -> None:
        name = f"{meta(sts)['name']}-{i}"
        pod = pod_from_template(template, sts, name=name,
                                labels={POD_NAME_LABEL: name, POD_INDEX_LABEL: str(i), REVISION_LABEL: rev})
        pod["spec"]["hostname"] = name
        if templates(sts):
            await ensure_claims(self.client, self._claims_rt(), self.recorder, sts, i)
            add_claim_volumes(pod, sts, i)
        if spec(sts).get("serviceName"):
            pod["spec"]["subdomain"] = spec(sts)["serviceName"]
        created = await self.pod_control.create(sts, pod)
        self.expect.wrote(key, self.pods, created)

    def _claims_rt(self) -> ResourceType:
        rt = registry_of(self.client).by_kind("PersistentVolumeClaim")
        assert rt is not None
        return rt

    async def _delete(self, key: str, sts: Obj, pod: Obj) -> None:
        out = await self.pod_control.delete(sts, pod)
        self.expect.deleted(pod)
        if out is not None:
            self.expect.wrote(key, self.pods, out)

    async def _status(
        self, key: str, sts: Obj, pods: list[Obj], current_rev: str, update_rev: str
    ) -> Result | None:
        now = self.clock()
        min_ready = int_or(spec(sts).get("minReadySeconds"), 0)
        n = int_or(spec(sts).get("replicas"), 1)
        st: Obj = {**status(sts)}
        st.update({
            "observedGeneration": meta(sts).get("generation", 0),
            "replicas": len(pods),
            "readyReplicas": sum(1 for p in pods if is_pod_ready(p)),
            "availableReplicas": sum(1 for p in pods if is_pod_available(p, min_ready, now)),
            "currentReplicas": sum(1 for p in pods if _revision(p) == current_rev),
            "updatedReplicas": sum(1 for p in pods if _revision(p) == update_rev),
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": int(st.get("collisionCount") or 0),
        })
        if st["updatedReplicas"] == n and st["readyReplicas"] == n and st["replicas"] == n:
            st["currentRevision"] = update_rev  # kube's completeRollingUpdate
            st["currentReplicas"] = st["updatedReplicas"]
        await self.write_status(key, sts, st)
        wait = seconds_until_available(pods, min_ready, now)
        return Result(requeue_after=wait) if wait is not None else None
