"""NodeInfo: one node's allocatable and the aggregate of the pods on it (kube's framework.NodeInfo).

Owns: the per-node aggregates every filter and score reads — allocatable and requested resources
(exact requests and the non-zero variant), pod count, used host ports, the pods with (anti-)affinity
terms, and the live (not terminating) pods counted per namespace and label set (what topology spreading
counts: the pods of one workload share a label set, so a selector is matched once per set, not per
pod) — kept incrementally as pods come and go, and a `generation` that changes with any of them
(the framework caches node-local results against it).
Must not import: client, controller.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from orchestra.api.machinery.selectors import LabelSelector
from orchestra.objects import Obj
from orchestra.reconcilers.scheduler.podinfo import CPU, MEMORY, PODS, PodInfo, resource_map

ANY_IP = "0.0.0.0"

_generation = 0


def next_generation() -> int:
    global _generation
    _generation += 1
    return _generation


@attrs.define(slots=True, eq=False)
class NodeInfo:
    name: str
    node: Obj | None = None  # None: pods reference a node the cache has not seen (yet)
    labels: Mapping[str, str] = attrs.Factory(dict)
    taints: list[Obj] = attrs.Factory(list)
    unschedulable: bool = False
    allocatable: dict[str, int] = attrs.Factory(dict)
    alloc_cpu: int = 0
    alloc_memory: int = 0
    alloc_pods: int = 0
    requested: dict[str, int] = attrs.Factory(dict)
    req_cpu: int = 0
    req_memory: int = 0
    nz_cpu: int = 0
    nz_memory: int = 0
    pods: dict[str, PodInfo] = attrs.Factory(dict)
    used_ports: dict[tuple[str, int], dict[str, int]] = attrs.Factory(dict)  # (proto, port) -> ip -> n
    affinity_pods: dict[str, PodInfo] = attrs.Factory(dict)  # pods with any (anti-)affinity term
    anti_affinity_pods: dict[str, PodInfo] = attrs.Factory(dict)  # pods with required anti-affinity
    # namespace -> label set -> (labels, number of live pods with them)
    label_groups: dict[str, dict[tuple[tuple[str, str], ...], tuple[Mapping[str, str], int]]] = attrs.Factory(
        dict
    )
    generation: int = attrs.Factory(next_generation)
    index: int = -1  # position in Cache.node_list()

    def set_node(self, node: Obj) -> None:
        spec = node.get("spec") or {}
        self.node = node
        self.labels = (node.get("metadata") or {}).get("labels") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))
        status = node.get("status") or {}
        self.allocatable = resource_map(status.get("allocatable") or status.get("capacity"))
        self.alloc_cpu = self.allocatable.get(CPU, 0)
        self.alloc_memory = self.allocatable.get(MEMORY, 0)
        self.alloc_pods = self.allocatable.get(PODS, 0)
        self.generation = next_generation()

    def add_pod(self, pod: PodInfo) -> None:
        self._account(pod, 1)
        self.pods[pod.key] = pod
        if pod.has_affinity_terms:
            self.affinity_pods[pod.key] = pod
        if pod.anti_affinity:
            self.anti_affinity_pods[pod.key] = pod

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is not None:
            self._account(pod, -1)
            self.affinity_pods.pop(key, None)
            self.anti_affinity_pods.pop(key, None)
        return pod

    def _account(self, pod: PodInfo, sign: int) -> None:
        for k, v in pod.requests.items():
            self.requested[k] = self.requested.get(k, 0) + sign * v
        self.req_cpu = self.requested.get(CPU, 0)
        self.req_memory = self.requested.get(MEMORY, 0)
        self.nz_cpu += sign * pod.non_zero_cpu
        self.nz_memory += sign * pod.non_zero_memory
        if not pod.terminating:
            groups = self.label_groups.setdefault(pod.namespace, {})
            n = groups.get(pod.label_group, (pod.labels, 0))[1] + sign
            if n > 0:
                groups[pod.label_group] = (pod.labels, n)
            else:
                groups.pop(pod.label_group, None)
                if not groups:
                    del self.label_groups[pod.namespace]
        for ip, proto, port in pod.host_ports:
            ips = self.used_ports.setdefault((proto, port), {})
            ips[ip] = ips.get(ip, 0) + sign
            if ips[ip] <= 0:
                del ips[ip]
                if not ips:
                    del self.used_ports[(proto, port)]
        self.generation = next_generation()

    def ports_conflict(self, ports: tuple[tuple[str, str, int], ...]) -> bool:
        for ip, proto, port in ports:
            used = self.used_ports.get((proto, port))
            if used and (ip == ANY_IP or ip in used or ANY_IP in used):
                return True
        return False

    def clone(self) -> NodeInfo:
        """A copy whose pod set can be changed (preemption's dry runs, nominated pods)."""
        return attrs.evolve(
            self,
            requested=dict(self.requested),
            pods=dict(self.pods),
            used_ports={k: dict(v) for k, v in self.used_ports.items()},
            affinity_pods=dict(self.affinity_pods),
            anti_affinity_pods=dict(self.anti_affinity_pods),
            label_groups={ns: dict(g) for ns, g in self.label_groups.items()},
        )

    def count_matching(self, selector: LabelSelector, namespace: str) -> int:
        """Live pods in `namespace` whose labels match `selector` (kube's countPodsMatchSelector)."""
        groups = self.label_groups.get(namespace)
        if not groups:
            return 0
        return sum(n for labels, n in groups.values() if selector.matches(labels))
