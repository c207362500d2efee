"""The scheduler cache: NodeInfo per node, fed by the Node and Pod informers, plus assumed pods.

Owns (kube's internal/cache): which pods count against which node. A pod the scheduler decided to
bind is *assumed* on its node at once, before the bind write completes, so the next decision in a
burst already sees its requests; the informer's update for the bound pod confirms it, a failed bind
forgets it. Pods bound by anyone else are added when the informer reports them. Terminal pods
(Succeeded/Failed) and deleted pods no longer count.
Also an index for topology spreading: live pods counted per namespace, label set and node, and
`counts_by_node(selector, namespace)` — how many matching pods each node has — found by matching the
selector against the namespace's distinct label sets (memoised until that set changes), not per pod.
Must not import: client, controller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from orchestra.api.machinery.selectors import LabelSelector
from orchestra.objects import Obj
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import PodInfo

LabelGroup = tuple[tuple[str, str], ...]
MEMO_LIMIT = 10_000


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pod_node: dict[str, str] = {}  # pod key -> node name it counts against
        self.assumed: set[str] = set()
        self._list: list[NodeInfo] | None = None
        self.anti_affinity_pods = 0  # pods anywhere with required anti-affinity terms
        self.affinity_pods = 0  # pods anywhere with any (anti-)affinity term
        self.list_version = 0  # bumped whenever node_list() is rebuilt (indexes change)
        self.changes: list[NodeInfo] = []  # nodes in the order their generation changed (see results.py)
        # namespace -> label set -> (labels, node name -> live pods with them there)
        self._groups: dict[str, dict[LabelGroup, tuple[Any, dict[str, int]]]] = {}
        self._groups_version: dict[str, int] = {}  # bumped when a namespace's label sets change
        self._matching: dict[tuple[str, LabelSelector], tuple[int, list[dict[str, int]]]] = {}

    # --- nodes ---------------------------------------------------------------------------------

    def node_list(self) -> list[NodeInfo]:
        """Nodes the cache knows (in a stable order: the order they were added)."""
        if self._list is None:
            self._list = [n for n in self.nodes.values() if n.node is not None]
            for i, info in enumerate(self._list):
                info.index = i
            self.list_version += 1
        return self._list

    def set_node(self, node: Obj) -> NodeInfo:
        name = node["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        if info.node is None:
            self._list = None
        info.set_node(node)
        self.changes.append(info)
        return info

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None:
            return
        self._list = None
        if info.pods:
            info.node = None  # keep the pods' accounting until they are deleted, like kube
        else:
            del self.nodes[name]

    # --- pods ----------------------------------------------------------------------------------

    def node_of(self, key: str) -> str | None:
        return self._pod_node.get(key)

    def pod(self, key: str) -> PodInfo | None:
        node = self._pod_node.get(key)
        info = self.nodes.get(node) if node else None
        return info.pods.get(key) if info else None

    def assume(self, pod: PodInfo, node_name: str) -> None:
        self._place(pod, node_name)
        self.assumed.add(pod.key)

    def forget(self, key: str) -> None:
        """A bind failed: the assumed pod no longer counts."""
        if key in self.assumed:
            self.assumed.discard(key)
            self.remove_pod(key)

    def add_or_update_pod(self, pod: PodInfo) -> None:
        """An assigned pod as the informer reports it (confirms an assumed pod)."""
        self.assumed.discard(pod.key)
        self._place(pod, pod.node_name)

    def remove_pod(self, key: str) -> PodInfo | None:
        self.assumed.discard(key)
        node = self._pod_node.pop(key, None)
        info = self.nodes.get(node) if node else None
        if info is None:
            return None
        old = info.remove_pod(key)
        self.changes.append(info)
        if old is not None:
            self._count(old, -1, info.name)
        if info.node is None and not info.pods:
            del self.nodes[info.name]
        return old

    def _place(self, pod: PodInfo, node_name: str) -> None:
        if self._pod_node.get(pod.key) is not None:
            self.remove_pod(pod.key)
        info = self.nodes.get(node_name)
        if info is None:
            info = self.nodes[node_name] = NodeInfo(node_name)
        info.add_pod(pod)
        self.changes.append(info)
        self._count(pod, 1, node_name)
        self._pod_node[pod.key] = node_name

    def counts_by_node(self, selector: LabelSelector, namespace: str) -> Mapping[str, int]:
        """Node name -> live pods in `namespace` there whose labels match `selector`."""
        version = self._groups_version.get(namespace, 0)
        memo = self._matching.get((namespace, selector))
        if memo is None or memo[0] != version:
            groups = self._groups.get(namespace) or {}
            memo = (version, [per_node for labels, per_node in groups.values() if selector.matches(labels)])
            if len(self._matching) >= MEMO_LIMIT:
                self._matching.clear()
            self._matching[(namespace, selector)] = memo
        if len(memo[1]) == 1:
            return memo[1][0]  # the usual case: one workload's pods (read only: the live index)
        out: Counter[str] = Counter()
        for per_node in memo[1]:
            out.update(per_node)
        return out

    def _group(self, pod: PodInfo, node: str, sign: int) -> None:
        groups = self._groups.setdefault(pod.namespace, {})
        group = groups.get(pod.label_group)
        if group is None:
            if sign < 0:
                return
            group = groups[pod.label_group] = (pod.labels, {})
            self._groups_version[pod.namespace] = self._groups_version.get(pod.namespace, 0) + 1
        per_node = group[1]
        n = per_node.get(node, 0) + sign
        if n > 0:
            per_node[node] = n
        else:
            per_node.pop(node, None)
            if not per_node:
                del groups[pod.label_group]
                self._groups_version[pod.namespace] += 1

    def _count(self, pod: PodInfo, sign: int, node: str) -> None:
        if not pod.terminating:
            self._group(pod, node, sign)
        if pod.anti_affinity:
            self.anti_affinity_pods += sign
        if pod.has_affinity_terms:
            self.affinity_pods += sign

    def statistics(self) -> dict[str, int]:
        return {"nodes": len(self.node_list()), "pods": len(self._pod_node), "assumed": len(self.assumed)}
