"""Node lifecycle: node health from Lease heartbeats, condition taints, and NoExecute eviction.

Owns (kube's node lifecycle controller + taint eviction controller, keyed by node name):
  * health — the controller's own probe time for a node is the trio time at which it last saw the
    node's Lease (kube-node-lease/<node>) renewTime change, or the kubelet's Ready heartbeat change
    (a node seen for the first time starts fresh, as in kube). When `grace_period` passes without
    a probe, Ready (and the kubelet's pressure conditions) become Unknown, reason NodeStatusUnknown,
    message "Kubelet stopped posting node status." (a node that never posted a Ready condition
    gets `startup_grace_period` and NodeStatusNeverUpdated), and a NodeNotReady event is emitted;
  * taints — Ready Unknown: node.kubernetes.io/unreachable NoSchedule + NoExecute (timeAdded);
    Ready False: node.kubernetes.io/not-ready NoSchedule + NoExecute; Ready True: neither;
  * recovery — when the Lease is renewed again after the controller marked the node Unknown, the
    controller sets Ready back to True (KubeletReady): kube leaves that to the kubelet's next status
    post; orchestra's agents may only renew their Lease, so the controller does it (documented
    deviation);
  * NoExecute taint manager — pods on a node with NoExecute taints that do not tolerate them all
    are deleted at once; pods that do are deleted when the shortest matching tolerationSeconds has
    passed since the taint was first seen (the DefaultTolerationSeconds admission plugin gives every
    pod 300 s for not-ready and unreachable, 30 s with `orchestra up --timings fast`). Evicted pods
    get the DisruptionTarget condition and a TaintManagerEviction event.
Not built: zone disruption modes (kube stops evicting when a whole zone is down).
Timings: DEFAULT_TIMINGS are kube-controller-manager's (node-monitor-grace-period 40 s,
node-startup-grace-period 60 s); FAST_TIMINGS (10 s / 20 s) is the documented local profile.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import attrs
import trio

from orchestra.api.errors import NotFound
from orchestra.client.base import Client
from orchestra.controller import NORMAL, Controller, Result
from orchestra.objects import Obj, deep_copy, min_toleration_seconds, now_rfc3339, ready_condition

log = logging.getLogger("orchestra.reconcilers.node_lifecycle")

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
MANAGED_TAINTS = frozenset({UNREACHABLE, NOT_READY})
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
_RECOVERED = {
    "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
    "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
}
_EPSILON = 1e-6  # virtual-clock deadlines computed two ways may differ in the last float bits


@attrs.frozen
class NodeLifecycleTimings:
    grace_period: float = 40.0  # --node-monitor-grace-period
    startup_grace_period: float = 60.0  # --node-startup-grace-period


DEFAULT_TIMINGS = NodeLifecycleTimings()
FAST_TIMINGS = NodeLifecycleTimings(grace_period=10.0, startup_grace_period=20.0)


@attrs.define
class _Health:
    probe: float  # trio time of the last observed heartbeat
    renew: Any = None  # last seen Lease spec.renewTime
    heartbeat: Any = None  # last seen Ready lastHeartbeatTime
    renewals: int = 0  # Lease renewals seen since this controller first saw the node
    renewals_at_mark: int = -1  # `renewals` when the controller marked the node Unknown
    taints_seen: dict[tuple[str, str], float] = attrs.field(factory=dict)  # NoExecute taint -> first seen


class NodeLifecycleController(Controller):
    name = "node-controller"

    def __init__(self, client: Client, *, timings: NodeLifecycleTimings = DEFAULT_TIMINGS, workers: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.timings = timings
        self.nodes = self.informer("Node")
        self.leases = self.informer("Lease", namespace=LEASE_NAMESPACE)
        self.pods = self.informer(
            "Pod", indexers={"node": lambda p: [n] if (n := (p.get("spec") or {}).get("nodeName")) else []}
        )
        self.enqueue_on(self.nodes)
        self.enqueue_on(self.leases, lambda _t, old, new: [(new or old or {})["metadata"]["name"]])
        self.enqueue_on(self.pods, self._node_of_pod)
        self._health: dict[str, _Health] = {}
        self._written: dict[str, str] = {}  # node -> resourceVersion of our last write

    def _node_of_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        if new is None or (new.get("metadata") or {}).get("deletionTimestamp"):
            return []
        node_name = str((new.get("spec") or {}).get("nodeName") or "")
        node = self.nodes.get(None, node_name) if node_name else None
        if node is None or not _noexecute(node):
            return []  # only pods on NoExecute-tainted nodes concern the taint manager
        return [node_name]

    async def reconcile(self, key: str) -> Result | None:
        # Our last write to this node must be in the cache, or we would act on the state before it.
        await self.nodes.wait_for_resource_version(self._written.pop(key, None))
        cached = self.nodes.get(None, key)
        if cached is None:
            self._health.pop(key, None)
            return None
        now = trio.current_time()
        health = self._observe(key, cached, now)
        node, next_check = await self._update_health(cached, health, now)
        node = await self._sync_taints(node)
        if node is not cached:
            self._written[key] = node["metadata"]["resourceVersion"]
        next_eviction = await self._evict(node, health, now)
        wake = min(next_check, next_eviction)
        return Result(requeue_after=max(wake - now, 0.0)) if wake < math.inf else None

    # --- health ------------------------------------------------------------------------------

    def _observe(self, name: str, node: Obj, now: float) -> _Health:
        lease = self.leases.get(LEASE_NAMESPACE, name)
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        heartbeat = (ready_condition(node) or {}).get("lastHeartbeatTime")
        health = self._health.get(name)
        if health is None:
            health = self._health[name] = _Health(probe=now, renew=renew, heartbeat=heartbeat)
            return health
        if renew != health.renew:
            health.renew, health.probe = renew, now
            health.renewals += 1
        if heartbeat != health.heartbeat:
            health.heartbeat, health.probe = heartbeat, now
        return health

    async def _update_health(self, node: Obj, health: _Health, now: float) -> tuple[Obj, float]:
        ready = ready_condition(node)
        grace = self.timings.startup_grace_period if ready is None else self.timings.grace_period
        deadline = health.probe + grace
        if now + _EPSILON < deadline:
            if (
                ready is not None
                and ready.get("status") == "Unknown"
                and ready.get("reason") == "NodeStatusUnknown"
                and health.renewals > health.renewals_at_mark >= 0
            ):
                node = await self._set_conditions(node, recovered=True)
            return node, deadline
        if ready is not None and ready.get("status") == "Unknown":
            return node, math.inf
        log.info("node %s: no heartbeat for %.0fs; marking Ready Unknown", node["metadata"]["name"], grace)
        health.renewals_at_mark = health.renewals
        node = await self._set_conditions(node, recovered=False)
        self.recorder.event(
            node, NORMAL, "NodeNotReady", f"Node {node['metadata']['name']} status is now: NodeNotReady"
        )
        return node, math.inf

    async def _set_conditions(self, node: Obj, *, recovered: bool) -> Obj:
        new = deep_copy(node)
        now = now_rfc3339()
        conds = new.setdefault("status", {}).setdefault("conditions", [])
        by_type = {c.get("type"): c for c in conds}
        for ctype in KUBELET_CONDITIONS:
            c = by_type.get(ctype)
            if recovered:
                if c is None or c.get("reason") != "NodeStatusUnknown":
                    continue
                status, reason, message = _RECOVERED[ctype]
            elif c is None:
                if ctype != "Ready":
                    continue
                status, reason, message = (
                    "Unknown",
                    "NodeStatusNeverUpdated",
                    "Kubelet never posted node status.",
                )
                c = {"type": ctype}
                conds.append(c)
            else:
                status, reason, message = (
                    "Unknown",
                    "NodeStatusUnknown",
                    "Kubelet stopped posting node status.",
                )
            if c.get("status") != status:
                c["lastTransitionTime"] = now
            c.update(status=status, reason=reason, message=message)
            c.setdefault("lastHeartbeatTime", c.get("lastHeartbeatTime") or now)
        return await self.client.update_status(self.nodes.rt, new)

    # --- taints ------------------------------------------------------------------------------

    async def _sync_taints(self, node: Obj) -> Obj:
        status = (ready_condition(node) or {}).get("status")
        key = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(str(status))
        taints = list((node.get("spec") or {}).get("taints") or [])
        keep = [t for t in taints if t.get("key") not in MANAGED_TAINTS]
        want = list(keep)
        if key is not None:
            for effect in ("NoSchedule", "NoExecute"):
                existing = next(
                    (t for t in taints if t.get("key") == key and t.get("effect") == effect), None
                )
                want.append(existing or {"key": key, "effect": effect,
                                         **({"timeAdded": now_rfc3339()} if effect == "NoExecute" else {})})
        if want == taints:
            return node
        new = deep_copy(node)
        new.setdefault("spec", {})["taints"] = want or None
        if not want:
            del new["spec"]["taints"]
        log.info("node %s: taints %s", node["metadata"]["name"], [f"{t['key']}:{t['effect']}" for t in want])
        return await self.client.update(self.nodes.rt, new)

    # --- NoExecute taint manager ----------------------------------------------------------------

    async def _evict(self, node: Obj, health: _Health, now: float) -> float:
        """Delete pods whose tolerations ran out; returns the next eviction time (inf: none)."""
        taints = _noexecute(node)
        seen = {
            (t["key"], str(t.get("value") or "")): health.taints_seen.get(
                (t["key"], str(t.get("value") or "")), now
            )
            for t in taints
        }
        health.taints_seen = seen
        if not taints:
            return math.inf
        since = min(seen.values())
        next_due = math.inf
        for pod in self.pods.by_index("node", node["metadata"]["name"]):
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            secs = min_toleration_seconds((pod.get("spec") or {}).get("tolerations") or [], taints)
            due = now if secs is None else since + secs
            if due <= now + _EPSILON:
                await self._evict_pod(pod)
            else:
                next_due = min(next_due, due)
        return next_due

    async def _evict_pod(self, pod: Obj) -> None:
        m = pod["metadata"]
        log.info("evicting pod %s/%s from a NoExecute-tainted node", m["namespace"], m["name"])
        cond = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": now_rfc3339(),
        }
        try:
            await self.client.patch(
                self.pods.rt,
                m["namespace"],
                m["name"],
                {"status": {"conditions": [cond]}},
                patch_type="application/strategic-merge-patch+json",
                subresource="status",
            )
            self.recorder.event(
                pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {m['namespace']}/{m['name']}"
            )
            await self.client.delete(self.pods.rt, m["namespace"], m["name"], uid=m.get("uid"))
        except NotFound:
            pass  # gone already


def _noexecute(node: Obj) -> list[Obj]:
    return [
        t
        for t in (node.get("spec") or {}).get("taints") or []
        if t.get("effect") == "NoExecute" and t.get("key")
    ]
