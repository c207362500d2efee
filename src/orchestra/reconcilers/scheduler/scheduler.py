"""Scheduler: kube-scheduler's default profile as one trio service.

Owns the API side of scheduling —
  * informers on Pods, Nodes and Namespaces feed the cache (Services, ReplicaSets and StatefulSets
    give the system default spreading its selectors) (assigned pods, nodes) and the queue
    (pending pods with spec.schedulerName default-scheduler that are not terminating; a pod with
    spec.schedulingGates waits outside the queue, untouched, until its last gate is removed);
  * the scheduling cycle, one pod at a time: the framework picks a node, the pod is assumed on it
    (so the next pod already sees its requests), and the bind runs as its own task through the
    pods/binding subresource, followed by a Normal "Scheduled" event;
  * failures: PostFilter (preemption) may nominate a node — victims get the DisruptionTarget
    condition, a graceful delete and a "Preempted" event, the preemptor status.nominatedNodeName —
    then the pod's PodScheduled condition becomes False/Unschedulable with kube's message (status
    subresource), a Warning FailedScheduling event is recorded and the pod goes back to the queue;
  * cluster events (node added or changed, assigned pods added, deleted or finished, claims and
    volumes changed) move parked pods;
  * volumes (volumebinding.py): pods with persistentVolumeClaim volumes are checked against their
    claims and PVs; unbound WaitForFirstConsumer claims get the selected-node annotation before the
    pod is bound;
  * faults stay with their pod: a pod event the scheduler cannot handle (a stored object it cannot
    digest) is logged, counted (`handler_errors`) and retried with the pod backoff (retry.py); an
    unexpected error while scheduling or binding a pod is kube's SchedulerError for that pod (event,
    PodScheduled=False, backoffQ). Other pods go on being scheduled either way.
`run()` may be called again after it raised (a supervisor restarting it): it starts from a fresh
queue and cache, rebuilt from the informers' caches.
Usage: `scheduler = Scheduler(client)`; `await nursery.start(scheduler.run)`.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from typing import Any

import attrs
import trio

from orchestra.api.errors import ApiError, NotFound
from orchestra.client.base import Client
from orchestra.controller import (
    NORMAL,
    WARNING,
    EventRecorder,
    Informer,
    SharedInformers,
    object_key,
    registry_of,
)
from orchestra.objects import Obj, now_rfc3339
from orchestra.reconcilers.scheduler import preemption
from orchestra.reconcilers.scheduler.cache import Cache
from orchestra.reconcilers.scheduler.defaultselector import DefaultSelector
from orchestra.reconcilers.scheduler.framework import Diagnosis, FitError, Framework, NoNodesError
from orchestra.reconcilers.scheduler.podinfo import PodInfo
from orchestra.reconcilers.scheduler.queue import (
    INITIAL_BACKOFF,
    MAX_BACKOFF,
    QueuedPod,
    QueueStatistics,
    SchedulingQueue,
)
from orchestra.reconcilers.scheduler.retry import Retries
from orchestra.reconcilers.scheduler.volumebinding import (
    BIND_TIMEOUT,
    SELECTED_NODE,
    PodVolumes,
    claim_bound,
    claim_names,
    pod_volumes,
)

log = logging.getLogger("orchestra.reconcilers.scheduler")

SCHEDULER_NAME = "default-scheduler"
SMP = "application/strategic-merge-patch+json"
AFFINITY_PLUGINS = frozenset({"InterPodAffinity", "PodTopologySpread"})
LATENCY_SAMPLES = 100_000


@attrs.frozen
class SchedulerStatistics:
    queue: QueueStatistics
    nodes: int
    pods: int
    assumed: int
    attempts: int
    scheduled: int
    unschedulable: int  # attempts that found no node
    errors: int  # attempts that failed otherwise (no nodes, bind errors, unexpected errors)
    preemptions: int
    handler_errors: int  # pod events that could not be handled (the pod is retried with backoff)
    latency_p50: float  # seconds from first queued to bound, over recent pods
    latency_p99: float


def _phase_done(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _same_spec(pending: Obj, bound: Obj) -> bool:
    """The bound pod's spec is the pending one's plus spec.nodeName (same uid)."""
    a, b = pending.get("spec") or {}, bound.get("spec") or {}
    if (pending.get("metadata") or {}).get("uid") != (bound.get("metadata") or {}).get("uid") or len(
        b
    ) != len(a) + 1:
        return False
    return all(k == "nodeName" or a.get(k) == v for k, v in b.items())


def _node_relevant(node: Obj) -> tuple[Any, ...]:
    """What a node update must change for scheduling results to change."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    return ((node.get("metadata") or {}).get("labels"), spec.get("taints"), spec.get("unschedulable"),
            status.get("allocatable"), status.get("capacity"))


class Scheduler:
    name = SCHEDULER_NAME

    def __init__(
        self,
        client: Client,
        *,
        recorder: EventRecorder | None = None,
        seed: int | None = None,
        percentage_of_nodes_to_score: int = 0,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        pods: Informer | None = None,
        nodes: Informer | None = None,
        namespaces: Informer | None = None,
    ) -> None:
        """`pods` / `nodes` / `namespaces`: informers shared with other components (all objects of
        the kind, no selectors); whoever runs first starts them. `seed` makes tie-breaks repeatable."""
        self.client = client
        registry = registry_of(client)
        self._pod_rt = registry.by_kind("Pod")
        assert self._pod_rt is not None
        shared = SharedInformers.of(client)  # the same caches as the controllers on this API
        self.pods = pods or shared.informer(self._pod_rt)
        self.nodes = nodes or shared.informer(registry.by_kind("Node"))  # type: ignore[arg-type]
        self.namespaces = namespaces or shared.informer(registry.by_kind("Namespace"))  # type: ignore[arg-type]
        # what the system default spreading reads (kube's DefaultSelector): Services and workloads
        self.services, self.replicasets, self.statefulsets = (
            shared.informer(registry.by_kind(kind)) for kind in ("Service", "ReplicaSet", "StatefulSet"))  # type: ignore[arg-type]
        self.claims, self.volumes, self.storage_classes = (
            shared.informer(registry.by_kind(kind))  # type: ignore[arg-type]
            for kind in ("PersistentVolumeClaim", "PersistentVolume", "StorageClass"))
        self._own_recorder = recorder is None
        self.recorder = recorder or EventRecorder(client, SCHEDULER_NAME)
        self._backoff = (initial_backoff, max_backoff)
        self._framework_args = {
            "rng": random.Random(seed), "percentage_of_nodes_to_score": percentage_of_nodes_to_score,
            "default_selector": DefaultSelector(self.services, self.replicasets, self.statefulsets)}
        self._reset()
        self._retries = Retries(initial=initial_backoff, maximum=max_backoff)
        self._runs = 0
        self._counts = {"attempts": 0, "scheduled": 0, "unschedulable": 0, "errors": 0, "preemptions": 0,
                        "handler_errors": 0}
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._volumes_changed = trio.Event()  # set (and replaced) on every claim / volume / class event
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)
        self.namespaces.add_handler(self._on_namespace)
        for inf in (self.claims, self.volumes, self.storage_classes):
            inf.add_handler(self._on_volume_event)

    # --- running ---------------------------------------------------------------------------------

    def _reset(self) -> None:
        """A fresh queue, cache and framework (on a restart the informers' caches refill them)."""
        self.cache = Cache()
        self.queue = SchedulingQueue(initial_backoff=self._backoff[0], max_backoff=self._backoff[1])
        self.framework = Framework(self.cache, ns_labels=self._ns_labels,
                                   **self._framework_args)  # type: ignore[arg-type]
        self._ns_cache: dict[str, Any] | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start informers (started() once the caches are synced), then schedule until cancelled."""
        restarted = self._runs > 0
        self._runs += 1
        if restarted:
            self._reset()
        try:
            async with trio.open_nursery() as nursery:
                if self._own_recorder:
                    await nursery.start(self.recorder.run)
                for inf in (
                    self.namespaces,
                    self.services,
                    self.replicasets,
                    self.statefulsets,
                    self.storage_classes,
                    self.volumes,
                    self.claims,
                    self.nodes,
                    self.pods,
                ):
                    if not inf.running:  # not hosted by another component (or it stopped: restart it)
                        await nursery.start(inf.run)
                    await inf.wait_synced()
                if restarted:  # what the old queue and cache held, from the caches
                    self.nodes.replay(self._on_node)
                    self.pods.replay(self._on_pod)
                nursery.start_soon(self._retry_pods)
                task_status.started()
                while True:
                    qp = await self.queue.pop()
                    await self._schedule_contained(qp, nursery)
                    await trio.lowlevel.checkpoint()  # let informers and binds run between pods
        finally:
            self.queue.close()

    async def _schedule_contained(self, qp: QueuedPod, nursery: trio.Nursery) -> None:
        """schedule_one, with an unexpected error kept to its pod (kube's SchedulerError)."""
        try:
            await self.schedule_one(qp, nursery)
        except Exception as exc:  # a bug or a pod the framework cannot digest: that pod backs off
            log.exception("scheduling %s failed", qp.info.key)
            self._counts["errors"] += 1
            self.cache.forget(qp.info.key)
            self.queue.error(qp, requeue=True)
            await self._record_failure_contained(qp.info, f"scheduling failed: {exc!r}")

    async def _record_failure_contained(self, pod: PodInfo, message: str) -> None:
        try:
            await self._record_failure(pod, message, "SchedulerError", None)
        except Exception:  # the status write failed too: the log and the retry are what is left
            log.exception("recording the scheduling failure of %s failed", pod.key)

    async def _retry_pods(self) -> None:
        """Hand pods whose event could not be handled to `_on_pod` again when their backoff is over."""
        while True:
            for key in await self._retries.wait_due():
                pod = self.pods.get_by_key(key)
                if pod is None:
                    self._retries.forget(key)  # deleted meanwhile
                else:
                    self._on_pod("MODIFIED", None, pod)

    # --- the scheduling cycle --------------------------------------------------------------------

    async def schedule_one(self, qp: QueuedPod, nursery: trio.Nursery) -> None:
        pod = qp.info
        self._counts["attempts"] += 1
        names = claim_names(pod.obj)
        volumes = (
            pod_volumes(pod.obj, names, self.claims.get, self.volumes.get, self.storage_classes.get)
            if names
            else None
        )
        try:
            if volumes is not None and volumes.prefilter_msg:
                raise FitError(
                    pod, Diagnosis(len(self.cache.node_list()), prefilter_msg=volumes.prefilter_msg)
                )
            result = self.framework.schedule(pod, volumes.filter if volumes is not None else None)
        except NoNodesError as exc:
            self._counts["errors"] += 1
            self.queue.error(qp)
            await self._record_failure(pod, str(exc), "SchedulerError", None)
            return
        except FitError as fit:
            await self._unschedulable(qp, fit)
            return
        self.cache.assume(pod, result.node)
        self.framework.nominate(pod, None)
        self.queue.done(pod.key)
        nursery.start_soon(self._bind, qp, result.node, volumes)

    async def _bind(self, qp: QueuedPod, node: str, volumes: PodVolumes | None = None) -> None:
        pod = qp.info
        try:
            if volumes is not None and volumes.delayed:
                await self._select_node(pod, volumes.delayed, node)
            if volumes is not None and volumes.unbound and not await self._claims_bound(pod, volumes.unbound):
                self.cache.forget(pod.key)  # the pod went away meanwhile
                self.queue.move_all()
                return
            await self.client.bind(pod.namespace, pod.name, node)
        except Exception as exc:  # conflict (bound elsewhere or deleted meanwhile), not found, or a bug
            if not isinstance(exc, ApiError | trio.TooSlowError):
                log.exception("binding %s to %s failed", pod.key, node)
            self.cache.forget(pod.key)
            self.queue.move_all()  # the assumed resources are free again (kube's AssignedPodDelete)
            if isinstance(exc, NotFound) or self.pods.get(pod.namespace, pod.name) is None:
                return
            why = (
                'running PreBind plugin "VolumeBinding": binding volumes: timed out waiting for the condition'
                if isinstance(exc, trio.TooSlowError)
                else f"binding rejected: {exc}"
            )
            log.info("binding %s to %s failed: %s", pod.key, node, why)
            self._counts["errors"] += 1
            self.queue.error(qp, requeue=True)
            await self._record_failure(pod, why, "SchedulerError", None)
            return
        self._counts["scheduled"] += 1
        self._latencies.append(trio.current_time() - qp.initial)
        self.recorder.event(pod.obj, NORMAL, "Scheduled", f"Successfully assigned {pod.key} to {node}")

    async def _select_node(self, pod: PodInfo, claims: tuple[str, ...], node: str) -> None:
        """VolumeBinding's PreBind: the chosen node on each delayed claim, for the provisioner."""
        rt = self.claims.rt
        for name in claims:
            await self.client.patch(
                rt, pod.namespace, name, {"metadata": {"annotations": {SELECTED_NODE: node}}}
            )

    async def _claims_bound(self, pod: PodInfo, claims: tuple[str, ...]) -> bool:
        """VolumeBinding's PreBind wait: True once every claim is Bound, False if the pod is gone
        first; trio.TooSlowError after BIND_TIMEOUT."""
        with trio.fail_after(BIND_TIMEOUT):
            while not all(claim_bound(self.claims.get(pod.namespace, name)) for name in claims):
                if self.pods.get(pod.namespace, pod.name) is None:
                    return False
                await self._volumes_changed.wait()
        return True

    def _on_volume_event(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        self.queue.move_all(("VolumeBinding",))  # PVC / PV / StorageClass add or update
        self._volumes_changed.set()
        self._volumes_changed = trio.Event()

    async def _unschedulable(self, qp: QueuedPod, fit: FitError) -> None:
        pod = qp.info
        self._counts["unschedulable"] += 1
        diagnosis = fit.diagnosis
        outcome = preemption.preempt(self.framework, pod, diagnosis)
        diagnosis.postfilter_msg = outcome.message
        nominated: str | None = None
        current = str((pod.obj.get("status") or {}).get("nominatedNodeName") or "")
        if outcome.candidate is not None:
            nominated = outcome.candidate.node
            await self._prepare_candidate(pod, outcome.candidate)
        elif current and not outcome.message.startswith("preemption: not eligible"):
            nominated = ""  # kube clears a stale nomination when preemption cannot help
        if nominated is not None:
            self.framework.nominate(pod, nominated)
        self.queue.unschedulable(qp, diagnosis.plugins)
        await self._record_failure(pod, diagnosis.message(), "Unschedulable", nominated)

    async def _prepare_candidate(self, pod: PodInfo, candidate: preemption.Candidate) -> None:
        self._counts["preemptions"] += 1
        assert self._pod_rt is not None
        for victim in candidate.victims:
            if victim.terminating:
                continue  # graceful deletion already started
            condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                         "message": f"{SCHEDULER_NAME}: preempting to accommodate a higher priority pod",
                         "lastTransitionTime": now_rfc3339()}
            try:
                await self.client.patch(
                    self._pod_rt,
                    victim.namespace,
                    victim.name,
                    {"status": {"conditions": [condition]}},
                    patch_type=SMP,
                    subresource="status",
                )
                await self.client.delete(self._pod_rt, victim.namespace, victim.name)
            except NotFound:
                continue  # already gone: that is what we wanted
            self.recorder.event(
                victim.obj, NORMAL, "Preempted", f"Preempted by pod {pod.uid} on node {candidate.node}"
            )
        for other in list(self.framework.nominated.get(candidate.node, {}).values()):
            if other.priority < pod.priority:  # they may no longer fit there: let them look again
                self.framework.nominate(other, None)
                await self._patch_status(other, {"nominatedNodeName": None})

    async def _record_failure(self, pod: PodInfo, message: str, reason: str, nominated: str | None) -> None:
        """kube's handleSchedulingFailure: the event, then PodScheduled=False (and the nomination)."""
        current = self.pods.get(pod.namespace, pod.name)
        if current is None or (current.get("spec") or {}).get("nodeName"):
            return  # deleted or bound meanwhile
        self.recorder.event(current, WARNING, "FailedScheduling", message)
        status = current.get("status") or {}
        old = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        patch: Obj = {}
        if old is None or (old.get("status"), old.get("reason"), old.get("message")) != (
            "False",
            reason,
            message,
        ):
            changed = old is None or old.get("status") != "False"
            patch["conditions"] = [{
                "type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": now_rfc3339() if changed else old.get("lastTransitionTime"),  # type: ignore[union-attr]
            }]
        if nominated is not None and (status.get("nominatedNodeName") or "") != nominated:
            patch["nominatedNodeName"] = nominated or None
        if patch:
            await self._patch_status(pod, patch)

    async def _patch_status(self, pod: PodInfo, status: Obj) -> None:
        assert self._pod_rt is not None
        try:
            await self.client.patch(self._pod_rt, pod.namespace, pod.name, {"status": status}, patch_type=SMP,
                                    subresource="status")
        except NotFound:
            pass  # the pod is gone: nothing to report on

    # --- informer handlers (they only update the cache and the queue) ---------------------------

    def _on_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        key = object_key(obj) if obj is not None else ""
        try:
            self._handle_pod(event_type, old, new)
        except Exception as exc:  # a pod the scheduler cannot digest: contained to it, retried with backoff
            self._counts["handler_errors"] += 1
            delay = self._retries.failed(key)
            first = self._retries.attempts(key) == 1  # the traceback once, then one line per retry
            log.error(
                "scheduler: %s event of pod %s failed: %r; retrying in %.1fs",
                event_type,
                key,
                exc,
                delay,
                exc_info=first,
            )
            return
        self._retries.forget(key)

    def _handle_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            key = object_key(old)
            self.queue.delete(key)
            info = self.cache.pod(key)
            if info is not None:
                self.framework.nominate(info, None)
            if self.cache.remove_pod(key) is not None:
                self.queue.move_all()  # AssignedPodDelete: resources freed
            return
        key = object_key(new)
        spec = new.get("spec") or {}
        if spec.get("nodeName"):
            self._on_assigned(key, old, new)
            return
        if key in self.cache.assumed:
            return  # our bind is in flight: the informer has not seen it yet (kube's skipPodUpdate)
        if spec.get("schedulerName", SCHEDULER_NAME) != SCHEDULER_NAME:
            return
        if (new.get("metadata") or {}).get("deletionTimestamp") or _phase_done(new):
            self.queue.delete(key)
            return
        if spec.get("schedulingGates"):  # kube's SchedulingGates PreEnqueue: queued once they are all removed
            self.queue.delete(key)
            return
        info = PodInfo.from_pod(new)
        nominated = (new.get("status") or {}).get("nominatedNodeName")
        self.framework.nominate(info, nominated or None)
        if key in self.queue:
            self.queue.update(info)
        else:
            self.queue.add(info)

    def _on_assigned(self, key: str, old: Obj | None, new: Obj) -> None:
        self.queue.delete(key)
        if _phase_done(new):
            if self.cache.remove_pod(key) is not None:
                self.queue.move_all()  # a finished pod frees its node's resources
            return
        assumed = key in self.cache.assumed
        known = self.cache.node_of(key) is not None and not assumed
        prior = self.cache.pod(key) if assumed else None
        if prior is not None and _same_spec(prior.obj, new):  # confirming our own bind: reuse the parse
            m = new.get("metadata") or {}
            info = attrs.evolve(
                prior,
                obj=new,
                node_name=str(new["spec"]["nodeName"]),
                labels=m.get("labels") or {},
                terminating=bool(m.get("deletionTimestamp")),
            )
        else:
            info = PodInfo.from_pod(new)
        self.framework.nominate(info, None)
        self.cache.add_or_update_pod(info)
        old_labels = ((old or {}).get("metadata") or {}).get("labels")
        if not known or old_labels != info.labels:
            self.queue.move_all(AFFINITY_PLUGINS)  # AssignedPodAdd / label update

    def _on_node(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            self.cache.remove_node(old["metadata"]["name"])
            return
        info = self.cache.nodes.get(new["metadata"]["name"])
        if (
            info is not None
            and info.node is not None
            and old is not None
            and _node_relevant(old) == _node_relevant(new)
        ):
            info.node = new  # e.g. a heartbeat: nothing the plugins read changed
            return
        self.cache.set_node(new)
        self.queue.move_all()  # NodeAdd / NodeUpdate

    def _on_namespace(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        self._ns_cache = None

    def _ns_labels(self) -> dict[str, Any]:
        if self._ns_cache is None:
            self._ns_cache = {
                n["metadata"]["name"]: (n["metadata"].get("labels") or {}) for n in self.namespaces.list()
            }
        return self._ns_cache

    # --- introspection ---------------------------------------------------------------------------

    def statistics(self) -> SchedulerStatistics:
        lat = sorted(self._latencies)
        cache = self.cache.statistics()
        return SchedulerStatistics(
            queue=self.queue.statistics(), nodes=cache["nodes"], pods=cache["pods"], assumed=cache["assumed"],
            latency_p50=percentile(lat, 0.50), latency_p99=percentile(lat, 0.99), **self._counts,
        )


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
