"""DaemonSet controller (kube's pkg/controller/daemon).

Owns, per DaemonSet:
  * one pod per eligible node: nodeSelector, required node affinity (matchExpressions on labels,
    matchFields on metadata.name), NoSchedule/NoExecute taints against the template's
    tolerations plus the DaemonSet defaults (not-ready, unreachable NoExecute; disk-pressure,
    memory-pressure, pid-pressure, unschedulable NoSchedule; network-unavailable for
    hostNetwork);
  * pods are created the kube >= 1.12 way: a required node affinity term
    `matchFields metadata.name In [node]` and the scheduler binds them (pass
    `bind_directly=True` to set spec.nodeName instead, for clusters running without a scheduler);
  * extra pods on a node (oldest kept), failed pods deleted and recreated, pods on nodes that no
    longer qualify (untolerated NoExecute, selector/affinity mismatch) deleted;
  * RollingUpdate with maxUnavailable (int or percent of desired, rounded up, at least 1):
    unavailable old pods first, then available ones within the budget; OnDelete: nothing;
  * a ControllerRevision per template (history.py: `kubectl rollout history/undo` read and patch
    them back), pods labelled controller-revision-hash (the template hash) and
    pod-template-generation;
  * status: currentNumberScheduled, numberMisscheduled, desiredNumberScheduled, numberReady,
    updatedNumberScheduled, numberAvailable, numberUnavailable, observedGeneration.
Not built: rollingUpdate.maxSurge > 0 (treated as 0).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from typing import Any

from orchestra.client.base import Client
from orchestra.controller import Informer, Result, object_key
from orchestra.objects import (
    Obj,
    deep_copy,
    is_pod_ready,
    is_terminating,
    labels_match,
    meta,
    scaled_value,
    spec,
    status,
    tolerations_tolerate,
)
from orchestra.reconcilers.workloads.base import WorkloadController
from orchestra.reconcilers.workloads.common import (
    int_or,
    is_pod_available,
    seconds_until_available,
    template_hash,
)
from orchestra.reconcilers.workloads.history import REVISION_LABEL, RevisionHistory
from orchestra.reconcilers.workloads.keyed import claim_pods, settled
from orchestra.reconcilers.workloads.pods import pod_from_template

GENERATION_LABEL = "pod-template-generation"
_DEFAULT_TOLERATIONS = [
    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"),
]


def daemon_tolerations(pod_spec: Obj) -> list[Obj]:
    """The template's tolerations plus kube's AddOrUpdateDaemonPodTolerations."""
    tols = list(pod_spec.get("tolerations") or [])
    extra = list(_DEFAULT_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        extra.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in extra:
        if not any(
            t.get("key") == key and t.get("effect") == effect and t.get("operator") == "Exists" for t in tols
        ):
            tols.append({"key": key, "operator": "Exists", "effect": effect})
    return tols


def _expr_matches(expr: Obj, value: str | None) -> bool:
    op, values = expr.get("operator"), expr.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def node_affinity_matches(pod_spec: Obj, node: Obj) -> bool:
    labels = meta(node).get("labels") or {}
    if not labels_match(pod_spec.get("nodeSelector") or {}, labels):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    for term in terms:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue
        if all(_expr_matches(e, labels.get(e.get("key"))) for e in exprs) and all(
            _expr_matches(f, meta(node).get("name") if f.get("key") == "metadata.name" else None)
            for f in fields
        ):
            return True
    return False


def should_run(pod_spec: Obj, node: Obj) -> tuple[bool, bool]:
    """(shouldRun, shouldContinueRunning) like kube's NodeShouldRunDaemonPod."""
    if not node_affinity_matches(pod_spec, node):
        return False, False
    tols = daemon_tolerations(pod_spec)
    run = cont = True
    for taint in spec(node).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute") or tolerations_tolerate(tols, taint):
            continue
        run = False
        if taint.get("effect") == "NoExecute":
            cont = False
    return run, cont


def target_node(pod: Obj) -> str | None:
    """kube's GetTargetNodeName: spec.nodeName, else the metadata.name matchFields term."""
    if spec(pod).get("nodeName"):
        return str(spec(pod)["nodeName"])
    required = ((((spec(pod).get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution")) or {})
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if (
                f.get("key") == "metadata.name"
                and f.get("operator") == "In"
                and len(f.get("values") or []) == 1
            ):
                return str(f["values"][0])
    return None


def with_node_affinity(pod_spec: Obj, node_name: str) -> None:
    """kube's ReplaceDaemonSetPodNodeNameNodeAffinity."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    affinity = pod_spec.setdefault("affinity", {})
    na = affinity.setdefault("nodeAffinity", {})
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}


class DaemonSetController(WorkloadController):
    name = "daemonset-controller"
    kind = "DaemonSet"

    def __init__(self, client: Client, *, nodes: Informer | None = None, bind_directly: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.bind_directly = bind_directly
        self.nodes = self.use_informer(nodes) if nodes is not None else self.informer("Node")
        self.enqueue_on(self.nodes, lambda *_: [object_key(ds) for ds in self.owners.list()])
        self.history = RevisionHistory(self)

    def revision(self, ds: Obj) -> str:
        return template_hash(spec(ds).get("template") or {}, status(ds).get("collisionCount"))

    async def reconcile(self, key: str) -> Result | None:
        ds = await settled(self.expect, self.owners, key)
        if ds is None:
            return None
        pods = await claim_pods(self, key, ds)
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            node = target_node(p)
            if node is not None and status(p).get("phase") != "Succeeded":
                by_node.setdefault(node, []).append(p)
        pod_spec = (spec(ds).get("template") or {}).get("spec") or {}
        nodes = {meta(n)["name"]: n for n in self.nodes.list()}
        if not is_terminating(ds):
            current = await self.history.sync(ds, self.revision(ds))
            await self._manage(key, ds, nodes, by_node, pod_spec)
            await self._rolling_update(key, ds, nodes, by_node, pod_spec)
            in_use = {meta(current)["name"]} | {
                f"{meta(ds)['name']}-{_revision(p)}" for p in pods if not is_terminating(p)
            }
            await self.history.prune(ds, in_use)
        return await self._status(key, ds, nodes, by_node, pod_spec)

    async def _manage(self, key: str, ds: Obj, nodes: dict[str, Obj], by_node: dict[str, list[Obj]],
                      pod_spec: Obj) -> None:
        for node_name, node in sorted(nodes.items()):
            run, cont = should_run(pod_spec, node)
            pods = [p for p in by_node.get(node_name, []) if not is_terminating(p)]
            if run and not pods:
                await self._create(key, ds, node_name)
            elif not cont:
                for p in pods:
                    await self._delete(key, ds, p)
            else:
                failed = [p for p in pods if status(p).get("phase") == "Failed"]
                for p in failed:
                    await self._delete(key, ds, p)
                alive = sorted(
                    (p for p in pods if p not in failed),
                    key=lambda p: (
                        meta(p).get("creationTimestamp") or "",
                        int(meta(p).get("resourceVersion") or 0),
                    ),
                )
                for p in alive[1:]:
                    await self._delete(key, ds, p)
        for node_name, pods in by_node.items():
            if node_name not in nodes:
                for p in pods:
                    if not is_terminating(p):
                        await self._delete(key, ds, p)

    async def _rolling_update(self, key: str, ds: Obj, nodes: dict[str, Obj], by_node: dict[str, list[Obj]],
                              pod_spec: Obj) -> None:
        strategy = spec(ds).get("updateStrategy") or {}
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return
        rev = self.revision(ds)
        now = self.clock()
        min_ready = int_or(spec(ds).get("minReadySeconds"), 0)
        desired = sum(1 for n in nodes.values() if should_run(pod_spec, n)[0])
        budget = scaled_value(
            (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), desired, round_up=True
        )
        budget = max(budget, 1)
        unavailable = 0
        now_delete: list[Obj] = []
        candidates: list[Obj] = []
        for node_name, node in sorted(nodes.items()):
            if not should_run(pod_spec, node)[0]:
                continue
            pods = by_node.get(node_name, [])
            live = [p for p in pods if not is_terminating(p)]
            if not live:
                unavailable += 1
                continue
            pod = live[0]
            available = is_pod_available(pod, min_ready, now)
            if _revision(pod) == rev:
                unavailable += 0 if available else 1
            elif not available:
                now_delete.append(pod)
                unavailable += 1
            else:
                candidates.append(pod)
        for p in now_delete + candidates[:max(budget - unavailable, 0)]:
            await self._delete(key, ds, p)

    async def _create(self, key: str, ds: Obj, node_name: str) -> None:
        template = deep_copy(spec(ds).get("template") or {})
        labels = {REVISION_LABEL: self.revision(ds), GENERATION_LABEL: str(meta(ds).get("generation", 1))}
        pod = pod_from_template(template, ds, labels=labels)
        ps = pod["spec"]
        ps["tolerations"] = daemon_tolerations(ps)
        if self.bind_directly:
            ps["nodeName"] = node_name
        else:
            with_node_affinity(ps, node_name)
        created = await self.pod_control.create(ds, pod)
        self.expect.wrote(key, self.pods, created)

    async def _delete(self, key: str, ds: Obj, pod: Obj) -> None:
        out = await self.pod_control.delete(ds, pod)
        self.expect.deleted(pod)
        if out is not None:
            self.expect.wrote(key, self.pods, out)

    async def _status(self, key: str, ds: Obj, nodes: dict[str, Obj], by_node: dict[str, list[Obj]],
                      pod_spec: Obj) -> Result | None:
        now = self.clock()
        min_ready = int_or(spec(ds).get("minReadySeconds"), 0)
        rev = self.revision(ds)
        counts = dict.fromkeys(("desired", "current", "mis", "ready", "available", "updated"), 0)
        scheduled: list[Obj] = []
        for node_name, node in nodes.items():
            run, _ = should_run(pod_spec, node)
            pods = by_node.get(node_name, [])
            counts["desired"] += run
            if not pods:
                continue
            if not run:
                counts["mis"] += 1
                continue
            counts["current"] += 1
            pod = sorted(pods, key=lambda p: meta(p).get("creationTimestamp") or "")[0]
            scheduled.append(pod)
            counts["ready"] += is_pod_ready(pod)
            counts["available"] += is_pod_available(pod, min_ready, now)
            counts["updated"] += _revision(pod) == rev
        st: Obj = {**status(ds)}
        st.update({
            "currentNumberScheduled": counts["current"], "numberMisscheduled": counts["mis"],
            "desiredNumberScheduled": counts["desired"], "numberReady": counts["ready"],
            "updatedNumberScheduled": counts["updated"], "numberAvailable": counts["available"],
            "numberUnavailable": max(counts["desired"] - counts["available"], 0),
            "observedGeneration": meta(ds).get("generation", 0),
        })
        for k in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):
            if not st[k]:
                st.pop(k)
        await self.write_status(key, ds, st)
        wait = seconds_until_available(scheduled, min_ready, now)
        return Result(requeue_after=wait) if wait is not None else None


def _revision(pod: Obj) -> str:
    return str((meta(pod).get("labels") or {}).get(REVISION_LABEL) or "")

